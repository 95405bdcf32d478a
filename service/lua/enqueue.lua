-- enqueue: appends received events whose de-duplication key is absent and sets that key to
-- the new entry's id, in one atomic step (store_enqueue, store_enqueue_refs).
-- KEYS[2i-1]  stream   event i's queue (cs:events:sf or cs:events:mkto)
-- KEYS[2i]    dedup    event i's de-duplication key (cs:dedup:<sf|mkto>:<id>)
-- ARGV[1]     ttl      the de-duplication keys' lifetime (s)
-- ARGV[1+i]   event    event i's JSON
-- Returns per event its entry id, or false for a duplicate.
--@use received.lua
return enqueue_events(#KEYS / 2, 1, ARGV[1], {})
