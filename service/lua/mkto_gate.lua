-- mkto_gate: whether the queue toward Marketo may be read now (store_mkto_gate).
-- KEYS[1]  calls           cs:mkto:calls
-- KEYS[2]  inflight        cs:mkto:inflight
-- KEYS[3]  pace            cs:mkto:pace
-- KEYS[4]  stream          the queue toward Marketo (cs:events:sf)
-- KEYS[5]  rate            cs:mkto:rate (the arrival rate: t, n, rate of the last span)
-- KEYS[6]  read            cs:mkto:read (when the last paced read began)
-- KEYS[7]  fix_calls       cs:mkto:calls:fix (jobs' calls in the window: the pace counts on
--                          the window's calls less these, at most busy_max of them)
-- ARGV[1]  calls           calls per window
-- ARGV[2]  window          the window (ms)
-- ARGV[3]  max_concurrent  calls in flight at most
-- ARGV[4]  group           the consumer group
-- ARGV[5]  light_rate      arrivals per second below which reads are not paced
-- ARGV[6]  busy_max        the jobs' calls per window at most while reads are paced (the
--                          pace counts on the window's calls less these: lib/budget.lua)
-- Returns 0 (read now), {-2, pace ms, calls} (read what waits now, without waiting for
-- more, as much as that many calls carry) or the ms to wait.
-- While changes arrive slower than the light rate (measured over spans of a second or more
-- from the stream's entries-added) a read goes as soon as the budget has a permit. Under a
-- steadier stream it waits a pace since the last paced read and until the calls made are
-- within the tolerance of an even pace (lib/budget.lua), then takes what waited: a full
-- call's worth is no reason to run further ahead, as the window's hard stop would then hold
-- every change for seconds.
--@use budget.lua
local now = budget_now()
local window = tonumber(ARGV[2])
local wait = budget_wait(KEYS[1], KEYS[2], now, window, tonumber(ARGV[1]), tonumber(ARGV[3]))
if wait then return wait end
local ok, p = pcall(redis.call, 'XPENDING', KEYS[4], ARGV[4])
local waiting = redis.call('XLEN', KEYS[4]) - (ok and p[1] or 0)
-- The arrival rate toward Marketo: the running span's counts as soon as it shows, so a
-- stream that starts is paced from its first quarter second, not after the next full span.
local rate, now_rate, added, t0 = budget_rates(KEYS[4], KEYS[5], now)
if now - t0 >= 1000 then
  rate = now_rate
  redis.call('HSET', KEYS[5], 't', now, 'n', added, 'rate', rate)
  redis.call('PEXPIRE', KEYS[5], 60000)
end
local busy = rate >= tonumber(ARGV[5]) or now_rate >= tonumber(ARGV[5])
local live = budget_live_calls(tonumber(ARGV[1]), KEYS[7], now, window, busy, tonumber(ARGV[6]))
local debt, pace = budget_pace(live, window)
if busy then pace = math.max(pace, budget_window_pace(KEYS[1], now, window, tonumber(ARGV[1]))) end
local since = now - tonumber(redis.call('GET', KEYS[6]) or '0')
if not busy then
  -- Light arrivals go at once, but reads no closer than a quarter pace: a stream that starts
  -- is not measured as one yet, and every read of its first tenth of a second would cost a
  -- call that pushes the first paced read back.
  local quarter = math.floor(pace / 4)
  if since < quarter then return quarter - since end
  redis.call('SET', KEYS[6], now, 'PX', window)
  return 0
end
local ahead = tonumber(redis.call('GET', KEYS[3]) or '0') - now
local over = ahead - debt * pace
if over > 0 then return over end
if since < pace then return pace - since end
-- Nothing gathered yet: let some come rather than read them one by one.
if waiting == 0 then return math.max(1, math.floor(pace / 2)) end
-- This read is the pace's: the next one, in any process, waits a pace from now.
redis.call('SET', KEYS[6], now, 'PX', window)
-- The calls the tolerance has room for now: the read takes no more than they carry, so that
-- a backlog goes in full calls one pace apart (and the pace comes back to one call per read)
-- rather than in a few calls at once that push the next read back as far.
return {-2, pace, 1 + math.floor((debt * pace - math.max(0, ahead)) / pace)}
