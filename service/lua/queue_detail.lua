-- queue_detail: the queues by the CRM their events are to be written to
-- (store_queue_detail_get). Toward Marketo: the stream of events from Salesforce, their
-- retries and the events parked while Marketo's daily allowance is spent; toward Salesforce
-- the same of the Marketo stream. The total also counts the events parked by disabled
-- mappings, listed per program. Every read is O(1) but the parked programs' (one LLEN
-- each). The oldest of a direction is the earliest receive time of the event at the head of
-- its stream, of its oldest retry and of the head of its allowance list (an event's receive
-- time, not when it last entered a queue: a retried event keeps its age).
-- KEYS[1]  stream0     toward Marketo (cs:events:sf)
-- KEYS[2]  stream1     toward Salesforce (cs:events:mkto)
-- KEYS[3]  retry       cs:retry
-- KEYS[4]  recv0       cs:retry:recv:sf
-- KEYS[5]  recv1       cs:retry:recv:mkto
-- KEYS[6]  programs    cs:parked:programs
-- KEYS[7]  quota0      cs:parked:quota:marketo
-- KEYS[8]  quota1      cs:parked:quota:salesforce
-- KEYS[9..] parked     cs:parked:<programId> of each program in programs (the allowance
--                      lists among them, as "quota:<crm>")
-- ARGV[1..] program    those program ids, in the order of their keys
-- Returns {depth, oldest ms toward Marketo, depth, oldest ms toward Salesforce, total,
-- {program, count, ...}}, or false when programs no longer holds exactly those ids (read it
-- again and ask again).
--@use parked.lua
if not parked_current(KEYS[6], 1) then return false end
local function older(a, b)
  if b > 0 and (a == 0 or b < a) then return b end
  return a
end
local function received(json)
  local ok, ev = pcall(cjson.decode, json)
  if ok and type(ev) == 'table' and tonumber(ev.receivedAt) then
    return tonumber(ev.receivedAt)
  end
  return 0
end
local out = {}
for d = 0, 1 do
  local stream, recv, quota = KEYS[1 + d], KEYS[4 + d], KEYS[7 + d]
  local depth = redis.call('XLEN', stream) + redis.call('ZCARD', recv) +
                redis.call('LLEN', quota)
  local oldest = 0
  local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)
  if #first > 0 then
    local f = first[1][2]
    for i = 1, #f - 1, 2 do
      if f[i] == 'event' then oldest = received(f[i + 1]) end
    end
    if oldest == 0 then oldest = tonumber(string.match(first[1][1], '^(%d+)')) end
  end
  local r = redis.call('ZRANGE', recv, 0, 0, 'WITHSCORES')
  if #r > 0 then oldest = older(oldest, tonumber(r[2])) end
  local p = redis.call('LINDEX', quota, 0)
  if p then
    local ok, o = pcall(cjson.decode, p)
    if ok and type(o) == 'table' and type(o.event) == 'string' then
      oldest = older(oldest, received(o.event))
    end
  end
  out[#out + 1] = depth
  out[#out + 1] = tostring(oldest)
end
local total = redis.call('XLEN', KEYS[1]) + redis.call('XLEN', KEYS[2]) +
              redis.call('ZCARD', KEYS[3])
local programs = {}
for i = 9, #KEYS do
  local p = ARGV[i - 8]
  local n = redis.call('LLEN', KEYS[i])
  total = total + n
  if n > 0 and string.sub(p, 1, 6) ~= 'quota:' then
    programs[#programs + 1] = p
    programs[#programs + 1] = n
  end
end
out[#out + 1] = total
out[#out + 1] = programs
return out
