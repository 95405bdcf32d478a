-- ack: acknowledges and deletes finished entries of one queue (store_ack).
-- KEYS[1]    stream    the queue (cs:events:sf or cs:events:mkto)
-- ARGV[1]    group     the consumer group (workers)
-- ARGV[2..]  ids       the entry ids
-- Returns the number of entries deleted.
--@use entries.lua
return ack_delete(KEYS[1], ARGV[1], unpack(ARGV, 2))
