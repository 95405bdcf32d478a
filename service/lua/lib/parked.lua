-- lib/parked: the parked lists the caller read from cs:parked:programs (store_queue.c). The
-- program ids are only known by reading that set, so the caller reads it first and passes
-- each list's key; the script checks that the set still holds exactly those programs.

-- True when the set programs_key holds exactly the ids ARGV[first .. #ARGV].
local function parked_current(programs_key, first)
  if redis.call('SCARD', programs_key) ~= #ARGV - first + 1 then return false end
  for i = first, #ARGV do
    if redis.call('SISMEMBER', programs_key, ARGV[i]) == 0 then return false end
  end
  return true
end
