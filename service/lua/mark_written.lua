-- mark_written: raises one field on several member records, never lowering it
-- (store_mark_written).
-- KEYS[1..]  members  cs:member:<campaignId>:<mktoLeadId> each
-- ARGV[1]    field    sf_pending or mkto_pending
-- ARGV[2]    value    until when a write may land (ms)
-- Returns how many records were looked at.
for _, k in ipairs(KEYS) do
  if tonumber(redis.call('HGET', k, ARGV[1]) or '0') < tonumber(ARGV[2]) then
    redis.call('HSET', k, ARGV[1], ARGV[2])
  end
end
return #KEYS
