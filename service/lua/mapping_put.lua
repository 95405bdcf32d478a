-- mapping_put: stores a mapping unless another program maps its campaign
-- (store_mapping_put).
-- KEYS[1]  mapping       cs:mapping:<programId>
-- KEYS[2]  campaign      cs:mapping:campaign:<campaignId>
-- KEYS[3]  mappings      cs:mappings
-- KEYS[4]  old_campaign  cs:mapping:campaign:<the campaign it mapped before> (KEYS[2] when
--                        none)
-- ARGV[1]  program       the program id
-- ARGV[2]  json          the mapping's JSON
-- Returns {1, ''} created, {0, ''} replaced, or {2, owner} refused: program owner maps the
-- campaign.
local owner = redis.call('GET', KEYS[2])
if owner and owner ~= ARGV[1] then return {2, owner} end
local existed = redis.call('EXISTS', KEYS[1])
if KEYS[4] ~= KEYS[2] and redis.call('GET', KEYS[4]) == ARGV[1] then
  redis.call('DEL', KEYS[4])
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], tonumber(ARGV[1]), ARGV[1])
return {existed == 1 and 0 or 1, ''}
