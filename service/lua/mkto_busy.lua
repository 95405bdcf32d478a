-- mkto_busy: whether changes toward Marketo want its call budget now (store_mkto_busy), so
-- that a call that only refines (reading leads' sfdc ids toward Salesforce) waits its turn.
-- KEYS[1]  stream  the queue toward Marketo (cs:events:sf)
-- KEYS[2]  rate    cs:mkto:rate (the arrival rate of the last span: see mkto_gate.lua)
-- KEYS[3]  calls   cs:mkto:calls (the calls started in the window)
-- ARGV[1]  group           the consumer group
-- ARGV[2]  light_rate      arrivals per second from which reads toward Marketo are paced
-- ARGV[3]  calls           calls per window
-- ARGV[4]  window          the window (ms)
-- Returns 1 when changes wait to be read toward Marketo, arrive at the light rate or more, or
-- half of the window's calls are spent; 0 otherwise.
--@use budget.lua
local ok, p = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1])
local waiting = redis.call('XLEN', KEYS[1]) - (ok and p[1] or 0)
if waiting > 0 then return 1 end
if tonumber(redis.call('HGET', KEYS[2], 'rate') or '0') >= tonumber(ARGV[2]) then return 1 end
local now = budget_now()
local spent = redis.call('ZCOUNT', KEYS[3], now - tonumber(ARGV[4]), '+inf')
if spent * 2 >= tonumber(ARGV[3]) then return 1 end
return 0
