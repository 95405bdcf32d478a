-- job_page: records what a job did with one page, with the cursor that resumes after it, in
-- one step (store_job_page_save): a process that stops between two pages leaves the job at a
-- page's boundary. Only the process holding the mapping's lock may write.
-- KEYS[1]  job       cs:job:<id>
-- KEYS[2]  details   cs:job:<id>:details
-- KEYS[3]  mk        cs:job:<id>:mk (the program's members by email)
-- KEYS[4]  mkl       cs:job:<id>:mkl (their emails by lead id)
-- KEYS[5]  lock      cs:lock:job:<programId>
-- KEYS[6]  running   cs:jobs:running
-- KEYS[7]  applying  cs:jobs:applying
-- ARGV[1]  owner     the writer's token
-- ARGV[2]  page      JSON {"phase", "cursor", "incr": {field: n}, "details": [text],
--                    "detailsMax": n, "spill": [[email, value]], "leads": [[lead, email]],
--                    "seen": [email], "ttl": s, "applying": bool}: the phase and cursor
--                    after the page; counts to add (listedMarketo is counted here, of the
--                    members kept); difference details (kept while fewer than
--                    detailsMax); members to keep, by email and by lead; members met on both
--                    sides (their value's first byte becomes 'S'); the keep keys' lifetime;
--                    applying: every correction is queued, the job now waits for outcomes
--                    (the lock and the kept members go)
-- Returns 1 recorded, 2 recorded and a cancel is asked (stop), 0 not recorded (the lock or
-- the job is no longer the writer's).
if redis.call('GET', KEYS[5]) ~= ARGV[1] then return 0 end
local j = redis.call('HMGET', KEYS[1], 'state', 'owner', 'cancel')
if j[1] ~= 'running' or j[2] ~= ARGV[1] then return 0 end
local p = cjson.decode(ARGV[2])
for f, n in pairs(p.incr or {}) do redis.call('HINCRBY', KEYS[1], f, n) end
local room = tonumber(p.detailsMax or 0) - redis.call('LLEN', KEYS[2])
local kept = 0
for _, d in ipairs(p.details or {}) do
  if kept >= room then break end
  redis.call('RPUSH', KEYS[2], d)
  kept = kept + 1
end
if kept > 0 then redis.call('HINCRBY', KEYS[1], 'details', kept) end
local dropped = #(p.details or {}) - kept
if dropped > 0 then redis.call('HINCRBY', KEYS[1], 'detailsDropped', dropped) end
local ttl = tonumber(p.ttl or 604800)
-- listedMarketo counts the members kept for the first time: a listing that starts again (the
-- bulk extract after the paged listing, a resumed page) does not count a member twice.
local new = 0
for _, kv in ipairs(p.spill or {}) do new = new + redis.call('HSET', KEYS[3], kv[1], kv[2]) end
if new > 0 then redis.call('HINCRBY', KEYS[1], 'listedMarketo', new) end
for _, kv in ipairs(p.leads or {}) do redis.call('HSET', KEYS[4], kv[1], kv[2]) end
for _, k in ipairs(p.seen or {}) do
  local v = redis.call('HGET', KEYS[3], k)
  if v and string.sub(v, 1, 1) ~= 'S' then
    redis.call('HSET', KEYS[3], k, 'S' .. string.sub(v, 2))
  end
end
if #(p.spill or {}) > 0 then
  redis.call('EXPIRE', KEYS[3], ttl)
  redis.call('EXPIRE', KEYS[4], ttl)
end
redis.call('HSET', KEYS[1], 'phase', p.phase, 'cursor', p.cursor or '')
if p.applying then
  redis.call('SREM', KEYS[6], redis.call('HGET', KEYS[1], 'id'))
  redis.call('SADD', KEYS[7], redis.call('HGET', KEYS[1], 'id'))
  redis.call('HDEL', KEYS[1], 'owner')
  redis.call('DEL', KEYS[5], KEYS[3], KEYS[4])
end
if j[3] == '1' then return 2 end
return 1
