-- mapping_delete: deletes a mapping and its campaign index (store_mapping_delete).
-- KEYS[1]  mapping   cs:mapping:<programId>
-- KEYS[2]  campaign  cs:mapping:campaign:<campaignId>
-- KEYS[3]  mappings  cs:mappings
-- ARGV[1]  program   the program id
-- Returns 1 deleted, 0 when there was none.
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
