-- lib/received: appending received events past their de-duplication keys (store_queue.c).

-- For i = 1..n: unless KEYS[2i] (the event's de-duplication key) exists, appends ARGV[arg0 + i]
-- (the event JSON) to the stream KEYS[2i - 1] with 0 attempts and sets the key to the new
-- entry id for ttl seconds. out[i] gets the entry id, or false for a duplicate.
local function enqueue_events(n, arg0, ttl, out)
  for i = 1, n do
    if redis.call('EXISTS', KEYS[2 * i]) == 1 then
      out[i] = false
    else
      local id = redis.call('XADD', KEYS[2 * i - 1], '*', 'event', ARGV[arg0 + i],
                            'attempts', '0')
      redis.call('SET', KEYS[2 * i], id, 'EX', ttl)
      out[i] = id
    end
  end
  return out
end
