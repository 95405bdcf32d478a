-- retry: takes an entry out of its queue and into the retry sets (store_retry,
-- store_defer).
-- KEYS[1]  stream      the entry's queue
-- KEYS[2]  retry       cs:retry (members by due time)
-- KEYS[3]  retry_recv  cs:retry:recv (the same members by receive time)
-- KEYS[4]  queue_recv  cs:retry:recv:<sf|mkto>: the entry id by receive time (the queue's
--                      share, for store_queue_detail_get)
-- ARGV[1]  group       the consumer group
-- ARGV[2]  id          the entry id
-- ARGV[3]  member      the waiting entry's JSON (store_queue.c's waiting_member)
-- ARGV[4]  due         when the retry is due (ms)
-- ARGV[5]  received    when the event was received (ms)
-- Returns 1.
--@use entries.lua
ack_delete(KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[3])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[2])
return 1
