-- mkto_acquire: takes a permit of the Marketo call budget shared by every process
-- (store_mkto_acquire), on Redis's clock. A job's call (its listing, or a correction: fix_max
-- > 0) also takes one of the jobs' share of the window and of the calls in flight, one a
-- share's pace after the last (window / fix_max: spread out, not a block), and leaves
-- the live pace alone; a live call moves the live pace, which counts on the window's calls
-- less those jobs made in it. While live changes toward Marketo arrive at the light rate or
-- more, the jobs' share shrinks to busy_max calls (and as many in flight), and the live pace
-- counts on all the window's calls but those: it needs nearly the whole window (pace.h), at
-- the pace the calls already in the window allow (lib/budget.lua, budget_window_pace).
-- KEYS[1]  calls           cs:mkto:calls (calls started, by start time)
-- KEYS[2]  inflight        cs:mkto:inflight (calls in flight, by the end of their lease)
-- KEYS[3]  pace            cs:mkto:pace (when the calls made are one pace apart again)
-- KEYS[4]  fix_calls       cs:mkto:calls:fix (jobs' calls started, by start time)
-- KEYS[5]  fix_inflight    cs:mkto:inflight:fix (jobs' calls in flight)
-- KEYS[6]  live            the queue toward Marketo (cs:events:sf)
-- KEYS[7]  rate            cs:mkto:rate (the arrival rate toward Marketo: mkto_gate.lua)
-- ARGV[1]  token           the permit's token
-- ARGV[2]  calls           calls per window
-- ARGV[3]  window          the window (ms)
-- ARGV[4]  max_concurrent  calls in flight at most
-- ARGV[5]  lease           how long a permit is held at most (ms)
-- ARGV[6]  fix_max         a job's call: the jobs' calls per window at most; 0: a live call
-- ARGV[7]  fix_concurrent  a job's call: the jobs' calls in flight at most
-- ARGV[8]  light_rate      changes/s toward Marketo from which live reads are paced
-- ARGV[9]  busy_max        the jobs' calls per window at most while live changes arrive at
--                          light_rate or more
-- Returns 0 when a permit was taken, else the ms to wait.
--@use budget.lua
local now = budget_now()
local window = tonumber(ARGV[3])
local lease = tonumber(ARGV[5])
local fix_max = tonumber(ARGV[6]) or 0
local wait = budget_wait(KEYS[1], KEYS[2], now, window, tonumber(ARGV[2]), tonumber(ARGV[4]))
if wait then return wait end
local busy = budget_live_busy(KEYS[6], KEYS[7], now, tonumber(ARGV[8]))
if fix_max > 0 then
  local fix_concurrent = tonumber(ARGV[7])
  if busy then
    fix_max = math.min(fix_max, tonumber(ARGV[9]))
    fix_concurrent = math.min(fix_concurrent, fix_max)
  end
  wait = budget_wait(KEYS[4], KEYS[5], now, window, fix_max, fix_concurrent)
    or budget_fix_spacing(KEYS[4], now, window, fix_max)
  if wait then return wait end
end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZADD', KEYS[2], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], window * 2)
redis.call('PEXPIRE', KEYS[2], lease * 2)
if fix_max > 0 then
  redis.call('ZADD', KEYS[4], now, ARGV[1])
  redis.call('ZADD', KEYS[5], now + lease, ARGV[1])
  redis.call('PEXPIRE', KEYS[4], window * 2)
  redis.call('PEXPIRE', KEYS[5], lease * 2)
  return 0
end
-- The pace: each live call moves the time the next paced read may start one share of the
-- window further (mkto_gate.lua).
local live = budget_live_calls(tonumber(ARGV[2]), KEYS[4], now, window, busy, tonumber(ARGV[9]))
local _, pace = budget_pace(live, window)
if busy then pace = math.max(pace, budget_window_pace(KEYS[1], now, window, tonumber(ARGV[2]))) end
local tat = tonumber(redis.call('GET', KEYS[3]) or '0')
if tat < now then tat = now end
redis.call('SET', KEYS[3], tat + pace, 'PX', window * 2)
return 0
