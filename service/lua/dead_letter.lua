-- dead_letter: moves an entry to the dead letters under its entry id, or the next free id of
-- the same millisecond when an entry of the other queue already took it (both streams make
-- ids the same way) (store_dead_letter).
-- KEYS[1]  stream  the entry's queue
-- KEYS[2]  index   cs:deadletters
-- ARGV[1]  group   the consumer group
-- ARGV[2]  id      the entry id
-- ARGV[3]  item    the dead letter's listed JSON
-- ARGV[4]  event   the raw event JSON (replayed as it is)
-- ARGV[5]  at      when it was made (ms), its score in the index
-- ARGV[6]  q       the queue it came from (0, 1)
-- Returns the dead letter's id.
--@use entries.lua
ack_delete(KEYS[1], ARGV[1], ARGV[2])
local ms, seq = string.match(ARGV[2], '^(%d+)-(%d+)$')
local id = ARGV[2]
while redis.call('EXISTS', 'cs:dead:' .. id) == 1 do
  seq = tonumber(seq) + 1; id = ms .. '-' .. seq
end
redis.call('HSET', 'cs:dead:' .. id, 'item', ARGV[3], 'event', ARGV[4], 'q', ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[5], id)
return id
