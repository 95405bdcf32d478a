-- park: takes an entry of a disabled mapping out of its queue and parks it, in order
-- (store_park).
-- KEYS[1]  stream    the entry's queue
-- KEYS[2]  parked    cs:parked:<programId>
-- KEYS[3]  programs  cs:parked:programs
-- ARGV[1]  group     the consumer group
-- ARGV[2]  id        the entry id
-- ARGV[3]  member    the waiting entry's JSON (store_queue.c's waiting_member)
-- ARGV[4]  program   the program id
-- Returns 1.
--@use entries.lua
ack_delete(KEYS[1], ARGV[1], ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[4])
return 1
