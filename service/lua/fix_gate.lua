-- fix_gate: which of jobs' corrections a job thread may read now (store_fix_gate): those of a
-- direction that has some unread while its live queue has none (live changes go first), and
-- toward Marketo only while a permit of the whole budget and of the jobs' share is free (the
-- share shrunk to busy_max calls while live changes toward Marketo arrive at the light rate
-- or more: mkto_acquire.lua).
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
-- KEYS[9]  rate            cs:mkto:rate (the arrival rate toward Marketo: mkto_gate.lua)
-- ARGV[6]  group           the consumer group
-- ARGV[7]  light_rate      changes/s toward Marketo from which live reads are paced
-- ARGV[8]  busy_max        the jobs' calls per window at most while live changes arrive at
--                          light_rate or more
-- Returns {calls the jobs' share has left toward Marketo (0: read none now), 1 when
-- corrections toward Salesforce may be read (else 0), 1 when the share is shrunk (else 0; read
-- only while corrections toward Marketo wait)}.
--@use budget.lua
local function unread(stream)
  local ok, p = pcall(redis.call, 'XPENDING', stream, ARGV[6])
  return redis.call('XLEN', stream) - (ok and p[1] or 0)
end
local now = budget_now()
local window = tonumber(ARGV[2])
local room = 0
local busy = false
-- The arrival rate (an XINFO) is read only when corrections toward Marketo wait: this gate
-- runs on every turn of the job threads, every 200 ms when they have nothing to apply.
if unread(KEYS[7]) > 0 and unread(KEYS[5]) <= 0 and
   not budget_wait(KEYS[1], KEYS[2], now, window, tonumber(ARGV[1]), tonumber(ARGV[3])) then
  local fix_max, fix_concurrent = tonumber(ARGV[4]), tonumber(ARGV[5])
  busy = budget_live_busy(KEYS[5], KEYS[9], now, tonumber(ARGV[7]))
  if busy then
    fix_max = math.min(fix_max, tonumber(ARGV[8]))
    fix_concurrent = math.min(fix_concurrent, fix_max)
  end
  if not budget_wait(KEYS[3], KEYS[4], now, window, fix_max, fix_concurrent) then
    room = fix_max - redis.call('ZCARD', KEYS[3])
  end
end
return {room, (unread(KEYS[8]) > 0 and unread(KEYS[6]) <= 0) and 1 or 0, busy and 1 or 0}
