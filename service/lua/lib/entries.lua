-- lib/entries: taking entries out of a queue and putting waiting ones back (store_queue.c).

-- Acknowledges the entry ids ... for the consumer group and deletes them from stream.
-- Returns how many were deleted.
local function ack_delete(stream, group, ...)
  redis.call('XACK', stream, group, ...)
  return redis.call('XDEL', stream, ...)
end

-- Appends a waiting entry back to its queue: member is the JSON text a retry or a parked
-- event is kept as ({"event", "attempts", "error", "from", "q"}: store_queue.c's
-- waiting_member); streams holds the queues' keys in the order of q (0 cs:events:sf,
-- 1 cs:events:mkto, 2 cs:events:fix:sf, 3 cs:events:fix:mkto); an unknown q goes to
-- stream 0. Returns the decoded member.
local function requeue(member, streams)
  local o = cjson.decode(member)
  local q = tonumber(o.q) or 0
  redis.call('XADD', streams[q + 1] or streams[1], '*', 'event', o.event,
             'attempts', tostring(o.attempts), 'error', o.error or '')
  return o
end
