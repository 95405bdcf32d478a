-- lock: takes each key for a token, or extends it when the token holds it already
-- (store_lock_many).
-- KEYS[1..]  locks  cs:lock:<name> each
-- ARGV[1]    token  the holder's token
-- ARGV[2]    ttl    the lock's lifetime (ms)
-- Returns per key 1 taken, 0 held by another.
local got = {}
for i, k in ipairs(KEYS) do
  if redis.call('SET', k, ARGV[1], 'NX', 'PX', ARGV[2]) then got[i] = 1
  elseif redis.call('GET', k) == ARGV[1] then
    redis.call('PEXPIRE', k, ARGV[2]); got[i] = 1
  else got[i] = 0 end
end
return got
