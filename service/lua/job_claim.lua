-- job_claim: a process takes a job (store_job_claim): a queued one, or a running one whose
-- process stopped (its lock expired: the job resumes from its cursor). The mapping's lock,
-- held for ttl and renewed by the taker's heartbeat, makes one process work on the mapping's
-- job at a time.
-- KEYS[1]  job       cs:job:<id>
-- KEYS[2]  queued    cs:jobs:queued
-- KEYS[3]  running   cs:jobs:running
-- KEYS[4]  lock      cs:lock:job:<programId>
-- ARGV[1]  id        the job's id
-- ARGV[2]  owner     the taker's token
-- ARGV[3]  ttl       the lock's lifetime (ms)
-- ARGV[4]  now       (ms)
-- ARGV[5]  program   the program id the caller read with the job
-- Returns 1 taken (queued), 2 taken over (running), 0 not taken (another process has it, or
-- it moved on), -1 gone (its entries in the sets are removed).
local j = redis.call('HMGET', KEYS[1], 'state', 'phase', 'programId')
if not j[1] then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('SREM', KEYS[3], ARGV[1])
  return -1
end
if j[3] ~= ARGV[5] then return 0 end
if j[1] == 'queued' then
  if not redis.call('SET', KEYS[4], ARGV[2], 'NX', 'PX', ARGV[3]) then return 0 end
  redis.call('HSET', KEYS[1], 'state', 'running', 'phase', 'listing_marketo', 'startedAt',
             ARGV[4], 'owner', ARGV[2])
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('SADD', KEYS[3], ARGV[1])
  return 1
end
if j[1] == 'running' and j[2] ~= 'applying' then
  if not redis.call('SET', KEYS[4], ARGV[2], 'NX', 'PX', ARGV[3]) then return 0 end
  redis.call('HSET', KEYS[1], 'owner', ARGV[2])
  redis.call('HINCRBY', KEYS[1], 'takeovers', 1)
  redis.call('SADD', KEYS[3], ARGV[1])
  return 2
end
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 0
