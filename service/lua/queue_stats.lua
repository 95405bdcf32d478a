-- queue_stats: the queues' depth and the receive time of the oldest waiting event
-- (store_queue_stats).
-- KEYS[1]  stream0     cs:events:sf
-- KEYS[2]  retry       cs:retry
-- KEYS[3]  retry_recv  cs:retry:recv
-- KEYS[4]  programs    cs:parked:programs
-- KEYS[5]  stream1     cs:events:mkto
-- KEYS[6..] parked     cs:parked:<programId> of each program in programs
-- ARGV[1..] program    those program ids, in the order of their keys
-- Returns {depth, oldest receive time (ms, as text; 0 when none)}, or false when programs
-- no longer holds exactly those ids (read it again and ask again).
--@use parked.lua
if not parked_current(KEYS[4], 1) then return false end
local depth = redis.call('XLEN', KEYS[1]) + redis.call('XLEN', KEYS[5]) +
              redis.call('ZCARD', KEYS[2])
for i = 6, #KEYS do
  depth = depth + redis.call('LLEN', KEYS[i])
end
local oldest = 0
for _, k in ipairs({KEYS[1], KEYS[5]}) do
  local first = redis.call('XRANGE', k, '-', '+', 'COUNT', 1)
  if #first > 0 then
    local t = tonumber(string.match(first[1][1], '^(%d+)'))
    if oldest == 0 or t < oldest then oldest = t end
  end
end
local r = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
if #r > 0 then
  local t = tonumber(r[2])
  if oldest == 0 or t < oldest then oldest = t end
end
return {depth, tostring(oldest)}
