-- lib/dead: choosing a dead letter's id among candidates the caller passed (store_dead.c).
-- A dead letter's key, cs:dead:<id>, depends on which ids are free; so that every key a
-- script touches is in KEYS, the caller passes a window of candidate keys (the ids of one
-- millisecond, in order) and the script takes the first free one.

-- The index j (0-based) of the first of KEYS[first .. first + count - 1] that does not
-- exist, or nil when all do.
local function first_free(first, count)
  for j = 0, count - 1 do
    if redis.call('EXISTS', KEYS[first + j]) == 0 then return j end
  end
  return nil
end

-- How many of KEYS[first .. first + count - 1] do not exist.
local function count_free(first, count)
  local n = 0
  for j = 0, count - 1 do
    if redis.call('EXISTS', KEYS[first + j]) == 0 then n = n + 1 end
  end
  return n
end
