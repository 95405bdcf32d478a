-- member_put: records a member if its version is unchanged (store_member_put,
-- store_member_put_many).
-- KEYS[1]  member        cs:member:<campaignId>:<mktoLeadId>
-- KEYS[2]  members       cs:members:<campaignId>
-- KEYS[3]  cm            cs:cm:<campaignMemberId>; absent when there is none
-- ARGV[1]  version       the version the record must still have (0: none)
-- ARGV[2]  updated       when it is recorded (ms), its score in members
-- ARGV[3]  lead          the Marketo lead id, its member in members
-- ARGV[4]  cm_value      cs:cm's value, "<campaignId>:<mktoLeadId>"
-- ARGV[5]  sf_written    completed-write times: each only moves forward
-- ARGV[6]  mkto_written
-- ARGV[7]  sf_done       the sf_pending and mkto_pending marks to clear (0: none)
-- ARGV[8]  mkto_done
-- ARGV[9..]  fields      field, value pairs of the record
-- Returns 1 recorded, 0 refused (the version moved on).
local v = tonumber(redis.call('HGET', KEYS[1], 'ver') or '0')
if v ~= tonumber(ARGV[1]) then return 0 end
for i = 9, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
for j, f in ipairs({'sf_written', 'mkto_written'}) do
  local cur = tonumber(redis.call('HGET', KEYS[1], f) or '0')
  if tonumber(ARGV[4 + j]) > cur then redis.call('HSET', KEYS[1], f, ARGV[4 + j]) end
end
for j, f in ipairs({'sf_pending', 'mkto_pending'}) do
  if ARGV[6 + j] ~= '0' and redis.call('HGET', KEYS[1], f) == ARGV[6 + j] then
    redis.call('HSET', KEYS[1], f, '0')
  end
end
redis.call('HSET', KEYS[1], 'ver', v + 1)
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
if KEYS[3] then redis.call('SET', KEYS[3], ARGV[4]) end
return 1
