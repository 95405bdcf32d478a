-- job_cancel: asks a running job to stop at its next page (store_job_cancel_ask): the process
-- working on it ends it as cancelled (job_page answers it 2).
-- KEYS[1]  job     cs:job:<id>
-- ARGV[1]  expect  the state,phase the caller saw
-- Returns 1 asked, 0 when the job moved on meanwhile (read it again).
local j = redis.call('HMGET', KEYS[1], 'state', 'phase')
if not j[1] or ARGV[1] ~= j[1] .. ',' .. (j[2] or '') then return 0 end
redis.call('HSET', KEYS[1], 'cancel', '1')
return 1
