-- job_outcomes: counts what became of jobs' corrections (store_job_outcomes), on jobs that
-- still exist (an expired job is not made again by a late count).
-- KEYS[1..]  jobs  cs:job:<id> each
-- ARGV[3i-2], ARGV[3i-1], ARGV[3i]  the corrections of KEYS[i] applied, skipped (already so,
--            or dropped: stale, echo, backward move) and dead-lettered
-- Returns 1.
for i, k in ipairs(KEYS) do
  if redis.call('EXISTS', k) == 1 then
    local a, s, d = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i])
    if a > 0 then redis.call('HINCRBY', k, 'applied', a) end
    if s > 0 then redis.call('HINCRBY', k, 'skipped', s) end
    if d > 0 then redis.call('HINCRBY', k, 'deadLettered', d) end
  end
end
return 1
