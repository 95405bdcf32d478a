-- lib/entries: taking entries out of a queue and putting waiting ones back (store_queue.c).

-- Acknowledges the entry ids ... for the consumer group and deletes them from stream.
-- Returns how many were deleted.
local function ack_delete(stream, group, ...)
  redis.call('XACK', stream, group, ...)
  return redis.call('XDEL', stream, ...)
end

-- Appends a waiting entry back to its queue: member is the JSON text a retry or a parked
-- event is kept as ({"event", "attempts", "error", "from", "q"}: store_queue.c's
-- waiting_member); q 1 goes to stream1, any other to stream0. Returns the decoded member.
local function requeue(member, stream0, stream1)
  local o = cjson.decode(member)
  redis.call('XADD', o.q == 1 and stream1 or stream0, '*', 'event', o.event,
             'attempts', tostring(o.attempts), 'error', o.error or '')
  return o
end
