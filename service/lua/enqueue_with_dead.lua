-- enqueue_with_dead: appends events as enqueue.lua does, then stores each unusable item as a
-- dead letter under its receive time's first free id (no `event` field, so dead_replay.lua
-- finds nothing to queue; `unusable` holds the reason), unless its de-duplication key
-- exists; it then sets that key to the dead letter's id (store_enqueue_with_dead).
-- Items received in the same millisecond form a group; each group comes with a window of
-- candidate keys cs:dead:<ms>-0, cs:dead:<ms>-1, ... (lib/dead.lua). When a window has fewer
-- free keys than its group has items, nothing is done and -1 is returned: ask again with
-- larger windows.
-- KEYS[2i-1], KEYS[2i]    stream, dedup  per event i (enqueue.lua)
-- KEYS[2n+k]              dedup          per item k its de-duplication key
-- KEYS[2n+m+1]            index          cs:deadletters
-- KEYS[2n+m+2..]          candidates     the groups' windows, one after the other
-- ARGV[1]                 ttl            the de-duplication keys' lifetime (s)
-- ARGV[2], ARGV[3], ARGV[4]  n, m, g     the numbers of events, items and groups
-- ARGV[4+i]               event          event i's JSON
-- ARGV[4+n+3k-2 .. 4+n+3k]   item, reason, group  per item: its listed JSON, why it cannot
--                                        be used, its group (1..g)
-- ARGV[4+n+3m+3h-2 .. 4+n+3m+3h]  ms, first, count  per group h: the receive time (ms), the
--                                        index in KEYS of its window's first key, the
--                                        window's size
-- Returns per event, then per item, the id or false; or -1 (nothing done).
--@use received.lua
--@use dead.lua
local n, m, g = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local item0, group0 = 4 + n, 4 + n + 3 * m
local function group(h)
  local a = group0 + 3 * h - 2
  return ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
end
-- Every item of a group must find a free candidate, before anything is written.
local need = {}
for k = 1, m do
  local h = tonumber(ARGV[item0 + 3 * k])
  need[h] = (need[h] or 0) + 1
end
for h = 1, g do
  local _, first, count = group(h)
  if count_free(first, count) < (need[h] or 0) then return -1 end
end
local out = enqueue_events(n, 4, ARGV[1], {})
for k = 1, m do
  local dedup, a = KEYS[2 * n + k], item0 + 3 * k - 2
  if redis.call('EXISTS', dedup) == 1 then
    out[n + k] = false
  else
    local ms, first, count = group(tonumber(ARGV[a + 2]))
    local j = first_free(first, count)
    local id = ms .. '-' .. j
    redis.call('HSET', KEYS[first + j], 'item', ARGV[a], 'unusable', ARGV[a + 1])
    redis.call('ZADD', KEYS[2 * n + m + 1], ms, id)
    redis.call('SET', dedup, id, 'EX', ARGV[1])
    out[n + k] = id
  end
end
return out
