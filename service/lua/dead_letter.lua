-- dead_letter: moves an entry to the dead letters under its entry id, or the next free id of
-- the same millisecond when an entry of the other queue already took it (both streams make
-- ids the same way) (store_dead_letter).
-- KEYS[1]     stream      the entry's queue
-- KEYS[2]     index       cs:deadletters
-- KEYS[3..]   candidates  cs:dead:<id> for the entry id and the ids after it in its
--                         millisecond, in order (lib/dead.lua)
-- ARGV[1]     group       the consumer group
-- ARGV[2]     entry       the entry id
-- ARGV[3]     item        the dead letter's listed JSON
-- ARGV[4]     event       the raw event JSON (replayed as it is)
-- ARGV[5]     at          when it was made (ms), its score in the index
-- ARGV[6]     q           the queue it came from (0 to 3, store_queue.h)
-- ARGV[7..]   ids         the candidates' ids, in the order of their keys
-- Returns the dead letter's id, or false when every candidate is taken (then nothing was
-- done: ask again with the ids that follow).
--@use entries.lua
--@use dead.lua
local j = first_free(3, #KEYS - 2)
if not j then return false end
ack_delete(KEYS[1], ARGV[1], ARGV[2])
local id = ARGV[7 + j]
redis.call('HSET', KEYS[3 + j], 'item', ARGV[3], 'event', ARGV[4], 'q', ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[5], id)
return id
