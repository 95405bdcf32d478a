-- job_create: queues a new job for a mapping unless the mapping has one unfinished
-- (store_job_create): one job per mapping at a time, whichever process asks.
-- KEYS[1]  active    cs:job:active:<programId> (the mapping's unfinished job's id)
-- KEYS[2]  job       cs:job:<id> of the new job
-- KEYS[3]  all       cs:jobs (every job by creation time)
-- KEYS[4]  program   cs:jobs:program:<programId>
-- KEYS[5]  queued    cs:jobs:queued
-- KEYS[6]  current   cs:job:<id> of the job KEYS[1] named when the caller read it (KEYS[2]
--                    when none)
-- ARGV[1]  id        the new job's id
-- ARGV[2]  seen      the id the caller read from KEYS[1] ("" when none)
-- ARGV[3]  now       creation time (ms)
-- ARGV[4]  keep      how long index entries are kept (ms): older ones go
-- ARGV[5..] fields   the new job's fields and values
-- Returns {1, id} when queued, {0, id of the unfinished job}, or {-1} when KEYS[1] changed
-- since the caller read it (read it again and ask again).
local cur = redis.call('GET', KEYS[1])
if (cur or '') ~= ARGV[2] then return {-1} end
if cur then
  local st = redis.call('HGET', KEYS[6], 'state')
  if st == 'queued' or st == 'running' then return {0, cur} end
end
local fields = {}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[2], unpack(fields))
redis.call('SET', KEYS[1], ARGV[1])
local now = tonumber(ARGV[3])
for _, k in ipairs({KEYS[3], KEYS[4]}) do
  redis.call('ZREMRANGEBYSCORE', k, '-inf', now - tonumber(ARGV[4]))
  redis.call('ZADD', k, now, ARGV[1])
end
redis.call('ZADD', KEYS[5], now, ARGV[1])
return {1, ARGV[1]}
