-- unlock: releases the keys a token holds (store_unlock_many).
-- KEYS[1..]  locks  cs:lock:<name> each
-- ARGV[1]    token  the holder's token
-- Returns how many were released.
local n = 0
for _, k in ipairs(KEYS) do
  if redis.call('GET', k) == ARGV[1] then redis.call('DEL', k); n = n + 1 end
end
return n
