-- lib/budget: the Marketo call budget's hard limits and its pace (store_budget.c).

-- Redis's clock in ms, so that every process counts on the same one.
local function budget_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The hard limits: forgets calls (zset calls_key) older than the window and leases
-- (inflight_key) that ended, then returns the ms to wait while max_concurrent calls are in
-- flight or the window holds its calls; nil when a call may start now.
local function budget_wait(calls_key, inflight_key, now, window, calls, max_concurrent)
  redis.call('ZREMRANGEBYSCORE', calls_key, '-inf', now - window)
  redis.call('ZREMRANGEBYSCORE', inflight_key, '-inf', now)
  if redis.call('ZCARD', inflight_key) >= max_concurrent then return 20 end
  if redis.call('ZCARD', calls_key) >= calls then
    local first = redis.call('ZRANGE', calls_key, 0, 0, 'WITHSCORES')
    return math.max(1, tonumber(first[2]) + window - now)
  end
  return nil
end

-- The pace of reads toward Marketo: a paced read starts at most once per `pace`, and only
-- while the calls made are at most `debt` paces ahead of one per `pace` (a cell rate
-- algorithm's tolerance). So the extra calls of one read (another status, a lead lookup) are
-- carried by the tolerance instead of pushing the next read back: pushed back, that read
-- finds more waiting than one call carries, needs more calls and pushes the next one back
-- again. pace = window / (calls - 3): in any window the calls stay within window / pace +
-- debt + the first call of a read = calls. Returns debt, pace.
local function budget_pace(calls, window)
  local debt = math.max(0, math.min(2, calls - 2))
  local pace = math.floor(window / math.max(1, calls - 3))
  return debt, pace
end

-- The calls jobs made in the window (zset fix_calls_key, pruned of older ones): the live
-- pace counts on the window's calls less these (store_budget.h).
local function budget_fix_calls(fix_calls_key, now, window)
  redis.call('ZREMRANGEBYSCORE', fix_calls_key, '-inf', now - window)
  return redis.call('ZCARD', fix_calls_key)
end

-- The least even pace at which live calls can follow the calls already in the window (zset
-- calls_key) without meeting the hard limit of `calls`: the k-th call from now, at now + k *
-- pace, finds the window holding those newer than now + k * pace - window, so the
-- (calls - k + 1)-th newest must have left by then. A window filled evenly gives about
-- window / calls; a burst of jobs' calls just before a stream began gives more, and
-- spreads the live calls over the time the burst takes to leave instead of letting them run
-- into the hard limit and stop until it has. `calls` is the hard limit of every call, jobs'
-- included: they are in the window (counted against the live share as well, a job's one call
-- of a busy window doubled the pace of the next live read).
local function budget_window_pace(calls_key, now, window, calls)
  local newest = redis.call('ZREVRANGE', calls_key, 0, calls - 1, 'WITHSCORES')
  local pace = 0
  for k = 1, calls do
    local ts = tonumber(newest[2 * (calls - k + 1)])
    if ts then pace = math.max(pace, math.ceil((ts + window - now) / k)) end
  end
  return pace
end

-- Jobs' calls go evenly, one per window / fix_max at most (zset fix_calls_key their start
-- times): a burst of them would sit in the window as one block when a live stream begins.
-- Returns the ms to wait, or nil.
local function budget_fix_spacing(fix_calls_key, now, window, fix_max)
  local last = redis.call('ZREVRANGE', fix_calls_key, 0, 0, 'WITHSCORES')
  if not last[2] then return nil end
  local wait = tonumber(last[2]) + math.floor(window / fix_max) - now
  if wait > 0 then return wait end
  return nil
end

-- The calls of the window the live pace counts on: all but those jobs made in it, or, while
-- live changes stream (busy), all but the busy_max calls jobs may still take. The jobs' calls
-- made before the stream leave the window while the live ones come (a window of calls spread
-- out makes room at its full rate as they age); budget_wait's hard limit holds the rest.
local function budget_live_calls(calls, fix_calls_key, now, window, busy, busy_max)
  local fix = budget_fix_calls(fix_calls_key, now, window)
  if busy and fix > busy_max then fix = busy_max end
  return calls - fix
end

-- The arrival rate toward Marketo in changes/s (stream_key the queue toward it, rate_key
-- cs:mkto:rate: t, n, rate of the last span measured): that of the last span, and that of
-- the span now running, from the stream's entries-added, over at least 100 ms so that two
-- changes a few ms apart are no stream. Returns rate, now_rate, added, t0.
local function budget_rates(stream_key, rate_key, now)
  local added = 0
  local iok, info = pcall(redis.call, 'XINFO', 'STREAM', stream_key)
  if iok then
    for i = 1, #info, 2 do
      if info[i] == 'entries-added' then added = tonumber(info[i + 1]) end
    end
  end
  local r = redis.call('HMGET', rate_key, 't', 'n', 'rate')
  local t0, n0, rate = tonumber(r[1] or '0'), tonumber(r[2] or '0'), tonumber(r[3] or '0')
  local now_rate = 0
  if t0 > 0 and added >= n0 then
    now_rate = math.floor((added - n0) * 1000 / math.max(now - t0, 100))
  end
  return rate, now_rate, added, t0
end

-- Whether live changes toward Marketo arrive at light_rate or more, so that jobs give up
-- their share of the budget: the paced reads need nearly all of it (pace.h). The last span's
-- rate counts while it is recent (the read gate measures a span a second while workers read);
-- the running span's always.
local function budget_live_busy(stream_key, rate_key, now, light_rate)
  local rate, now_rate, _, t0 = budget_rates(stream_key, rate_key, now)
  return (now - t0 < 3000 and rate >= light_rate) or now_rate >= light_rate
end
