-- mkto_acquire: takes a permit of the Marketo call budget shared by every process
-- (store_mkto_acquire), on Redis's clock. A job's call (its listing, or a correction: fix_max
-- > 0) also takes one of the jobs' share of the window and of the calls in flight, and leaves
-- the live pace alone; a live call moves the live pace, which counts on the window's calls
-- less those jobs made in it.
-- KEYS[1]  calls           cs:mkto:calls (calls started, by start time)
-- KEYS[2]  inflight        cs:mkto:inflight (calls in flight, by the end of their lease)
-- KEYS[3]  pace            cs:mkto:pace (when the calls made are one pace apart again)
-- KEYS[4]  fix_calls       cs:mkto:calls:fix (jobs' calls started, by start time)
-- KEYS[5]  fix_inflight    cs:mkto:inflight:fix (jobs' calls in flight)
-- ARGV[1]  token           the permit's token
-- ARGV[2]  calls           calls per window
-- ARGV[3]  window          the window (ms)
-- ARGV[4]  max_concurrent  calls in flight at most
-- ARGV[5]  lease           how long a permit is held at most (ms)
-- ARGV[6]  fix_max         a job's call: the jobs' calls per window at most; 0: a live call
-- ARGV[7]  fix_concurrent  a job's call: the jobs' calls in flight at most
-- Returns 0 when a permit was taken, else the ms to wait.
--@use budget.lua
local now = budget_now()
local window = tonumber(ARGV[3])
local lease = tonumber(ARGV[5])
local fix_max = tonumber(ARGV[6]) or 0
local wait = budget_wait(KEYS[1], KEYS[2], now, window, tonumber(ARGV[2]), tonumber(ARGV[4]))
if wait then return wait end
if fix_max > 0 then
  wait = budget_wait(KEYS[4], KEYS[5], now, window, fix_max, tonumber(ARGV[7]))
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
local live = tonumber(ARGV[2]) - budget_fix_calls(KEYS[4], now, window)
local _, pace = budget_pace(live, window)
local tat = tonumber(redis.call('GET', KEYS[3]) or '0')
if tat < now then tat = now end
redis.call('SET', KEYS[3], tat + pace, 'PX', window * 2)
return 0
