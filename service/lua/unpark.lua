-- unpark: puts a program's parked entries back into their queues, in order (store_unpark).
-- KEYS[1]  parked    cs:parked:<programId>
-- KEYS[2]  programs  cs:parked:programs
-- KEYS[3]  stream0   the queue of q 0 (cs:events:sf)
-- KEYS[4]  stream1   the queue of q 1 (cs:events:mkto)
-- KEYS[5]  stream2   the queue of q 2 (cs:events:fix:sf)
-- KEYS[6]  stream3   the queue of q 3 (cs:events:fix:mkto)
-- ARGV[1]  program   the program id
-- Returns how many went back.
--@use entries.lua
local streams = {KEYS[3], KEYS[4], KEYS[5], KEYS[6]}
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for _, m in ipairs(items) do
  requeue(m, streams)
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return #items
