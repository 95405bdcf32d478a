-- dead_replay: queues a dead letter's event again, past de-duplication, into the live queue
-- of the direction it came from (a job's correction, q 2 or 3, too: a replay is a person's
-- request and goes before corrections), and deletes the dead letter (store_dead_replay,
-- store_dead_replay_many).
-- KEYS[1]  dead     cs:dead:<id>
-- KEYS[2]  index    cs:deadletters
-- KEYS[3]  stream0  the queue of q 0 and 2 (cs:events:sf)
-- KEYS[4]  stream1  the queue of q 1 and 3 (cs:events:mkto)
-- ARGV[1]  id       the dead letter's id
-- Returns 1 when queued, 0 when there was no event (gone, or an unusable item).
local ev = redis.call('HGET', KEYS[1], 'event')
if not ev then return 0 end
local q = tonumber(redis.call('HGET', KEYS[1], 'q')) or 0
redis.call('XADD', q % 2 == 1 and KEYS[4] or KEYS[3], '*', 'event', ev, 'attempts', '0')
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
