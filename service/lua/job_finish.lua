-- job_finish: ends a job (store_job_finish): done, failed or cancelled, with its end time
-- and error; it leaves every set of unfinished jobs, the mapping may have a new job, its
-- kept members go, and the job and its details expire after the retention.
-- KEYS[1]  job       cs:job:<id>
-- KEYS[2]  queued    cs:jobs:queued
-- KEYS[3]  running   cs:jobs:running
-- KEYS[4]  applying  cs:jobs:applying
-- KEYS[5]  active    cs:job:active:<programId>
-- KEYS[6]  lock      cs:lock:job:<programId>
-- KEYS[7]  details   cs:job:<id>:details
-- KEYS[8]  mk        cs:job:<id>:mk
-- KEYS[9]  mkl       cs:job:<id>:mkl
-- ARGV[1]  id        the job's id
-- ARGV[2]  owner     the finisher's token, which must hold the lock ("": no process works on
--                    the job: it is queued or applying)
-- ARGV[3]  state     done, failed or cancelled
-- ARGV[4]  error     the reason ("" none)
-- ARGV[5]  now       (ms)
-- ARGV[6]  keep      the retention (s)
-- ARGV[7]  expect    the state,phase the finisher saw ("" any unfinished)
-- Returns 1 ended, 0 not (already ended, moved on, or not the finisher's).
local j = redis.call('HMGET', KEYS[1], 'state', 'phase')
if not j[1] or j[1] == 'done' or j[1] == 'failed' or j[1] == 'cancelled' then return 0 end
if ARGV[7] ~= '' and ARGV[7] ~= j[1] .. ',' .. (j[2] or '') then return 0 end
if ARGV[2] ~= '' and redis.call('GET', KEYS[6]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[3], 'phase', 'finished', 'endedAt', ARGV[5])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[4]) end
redis.call('HDEL', KEYS[1], 'owner')
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('SREM', KEYS[4], ARGV[1])
if redis.call('GET', KEYS[5]) == ARGV[1] then redis.call('DEL', KEYS[5]) end
if ARGV[2] ~= '' then redis.call('DEL', KEYS[6]) end
redis.call('DEL', KEYS[8], KEYS[9])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[6]))
redis.call('EXPIRE', KEYS[7], tonumber(ARGV[6]))
return 1
