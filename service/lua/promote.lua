-- promote: moves due retries back into their queues (store_promote_due).
-- KEYS[1]  stream0      the queue of q 0 (cs:events:sf)
-- KEYS[2]  retry        cs:retry
-- KEYS[3]  retry_recv   cs:retry:recv
-- KEYS[4]  stream1      the queue of q 1 (cs:events:mkto)
-- KEYS[5]  recv0        cs:retry:recv:sf
-- KEYS[6]  recv1        cs:retry:recv:mkto
-- KEYS[7]  stream2      the queue of q 2 (cs:events:fix:sf)
-- KEYS[8]  stream3      the queue of q 3 (cs:events:fix:mkto)
-- KEYS[9]  recv2        cs:retry:recv:fix:sf
-- KEYS[10] recv3        cs:retry:recv:fix:mkto
-- ARGV[1]  now          retries due by this time (ms) go
-- ARGV[2]  max          at most this many
-- Returns how many went back.
--@use entries.lua
local streams = {KEYS[1], KEYS[4], KEYS[7], KEYS[8]}
local recvs = {KEYS[5], KEYS[6], KEYS[9], KEYS[10]}
local items = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0,
                         tonumber(ARGV[2]))
for _, m in ipairs(items) do
  local o = requeue(m, streams)
  redis.call('ZREM', KEYS[2], m)
  redis.call('ZREM', KEYS[3], m)
  redis.call('ZREM', recvs[(tonumber(o.q) or 0) + 1] or recvs[1], o.from or '')
end
return #items
