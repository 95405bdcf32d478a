-- fix_gate: which of jobs' corrections a worker may read now (store_fix_gate): those of a
-- direction that has some unread while its live queue has none (live changes go first), and
-- toward Marketo only while a permit of the whole budget and of the jobs' share is free.
-- KEYS[1]  calls           cs:mkto:calls
-- KEYS[2]  inflight        cs:mkto:inflight
-- KEYS[3]  fix_calls       cs:mkto:calls:fix
-- KEYS[4]  fix_inflight    cs:mkto:inflight:fix
-- KEYS[5]  live_mkto       the live queue toward Marketo (cs:events:sf)
-- KEYS[6]  live_sf         the live queue toward Salesforce (cs:events:mkto)
-- KEYS[7]  fix_mkto        the corrections toward Marketo (cs:events:fix:sf)
-- KEYS[8]  fix_sf          the corrections toward Salesforce (cs:events:fix:mkto)
-- ARGV[1]  calls           calls per window
-- ARGV[2]  window          the window (ms)
-- ARGV[3]  max_concurrent  calls in flight at most
-- ARGV[4]  fix_max         the jobs' calls per window at most
-- ARGV[5]  fix_concurrent  the jobs' calls in flight at most
-- ARGV[6]  group           the consumer group
-- Returns {calls the jobs' share has left toward Marketo (0: read none now), 1 when
-- corrections toward Salesforce may be read (else 0)}.
--@use budget.lua
local function unread(stream)
  local ok, p = pcall(redis.call, 'XPENDING', stream, ARGV[6])
  return redis.call('XLEN', stream) - (ok and p[1] or 0)
end
local now = budget_now()
local window = tonumber(ARGV[2])
local room = 0
if unread(KEYS[7]) > 0 and unread(KEYS[5]) <= 0 and
   not budget_wait(KEYS[1], KEYS[2], now, window, tonumber(ARGV[1]), tonumber(ARGV[3])) and
   not budget_wait(KEYS[3], KEYS[4], now, window, tonumber(ARGV[4]), tonumber(ARGV[5])) then
  room = tonumber(ARGV[4]) - redis.call('ZCARD', KEYS[3])
end
return {room, (unread(KEYS[8]) > 0 and unread(KEYS[6]) <= 0) and 1 or 0}
