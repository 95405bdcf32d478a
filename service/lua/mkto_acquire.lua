-- mkto_acquire: takes a permit of the Marketo call budget shared by every process
-- (store_mkto_acquire), on Redis's clock.
-- KEYS[1]  calls           cs:mkto:calls (calls started, by start time)
-- KEYS[2]  inflight        cs:mkto:inflight (calls in flight, by the end of their lease)
-- KEYS[3]  pace            cs:mkto:pace (when the calls made are one pace apart again)
-- ARGV[1]  token           the permit's token
-- ARGV[2]  calls           calls per window
-- ARGV[3]  window          the window (ms)
-- ARGV[4]  max_concurrent  calls in flight at most
-- ARGV[5]  lease           how long a permit is held at most (ms)
-- Returns 0 when a permit was taken, else the ms to wait.
--@use budget.lua
local now = budget_now()
local window = tonumber(ARGV[3])
local wait = budget_wait(KEYS[1], KEYS[2], now, window, tonumber(ARGV[2]), tonumber(ARGV[4]))
if wait then return wait end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], window * 2)
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[5]) * 2)
-- The pace: each call moves the time the next paced read may start one share of the window
-- further (mkto_gate.lua).
local _, pace = budget_pace(tonumber(ARGV[2]), window)
local tat = tonumber(redis.call('GET', KEYS[3]) or '0')
if tat < now then tat = now end
redis.call('SET', KEYS[3], tat + pace, 'PX', window * 2)
return 0
