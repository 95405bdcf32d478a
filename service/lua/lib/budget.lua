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
