-- enqueue_with_dead: appends events as enqueue.lua does, then stores each unusable item as a
-- dead letter under its receive time's first free id (no `event` field, so dead_replay.lua
-- finds nothing to queue; `unusable` holds the reason), unless its de-duplication key
-- exists; it then sets that key to the dead letter's id (store_enqueue_with_dead).
-- KEYS[2i-1], KEYS[2i]  stream, dedup  per event (enqueue.lua)
-- KEYS[2n+k]            dedup          per item its de-duplication key
-- KEYS[#KEYS]           index          cs:deadletters
-- ARGV[1]               ttl            the de-duplication keys' lifetime (s)
-- ARGV[2]               n              the number of events
-- ARGV[2+i]             event          event i's JSON
-- ARGV[n+3k], ARGV[n+3k+1], ARGV[n+3k+2]
--                       item, reason, received  per item: its listed JSON, why it cannot be
--                                      used, when it was received (ms)
-- Returns per event, then per item, the id or false.
--@use received.lua
local n = tonumber(ARGV[2])
local m = #KEYS - 2 * n - 1
local out = enqueue_events(n, 2, ARGV[1], {})
for k = 1, m do
  local dedup, a = KEYS[2 * n + k], n + 3 * k
  if redis.call('EXISTS', dedup) == 1 then
    out[n + k] = false
  else
    local ms, seq = ARGV[a + 2], 0
    while redis.call('EXISTS', 'cs:dead:' .. ms .. '-' .. seq) == 1 do seq = seq + 1 end
    local id = ms .. '-' .. seq
    redis.call('HSET', 'cs:dead:' .. id, 'item', ARGV[a], 'unusable', ARGV[a + 1])
    redis.call('ZADD', KEYS[#KEYS], ms, id)
    redis.call('SET', dedup, id, 'EX', ARGV[1])
    out[n + k] = id
  end
end
return out
