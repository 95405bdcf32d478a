-- audit_add: appends entries to the audit log (store_audit_add; store_priv_pipe_add_audit
-- writes one the same way).
-- KEYS[1]    audit    cs:audit
-- ARGV[1]    max      the log's length, kept near it (MAXLEN ~)
-- ARGV[2..]  entries  each entry's JSON
-- Returns how many were appended.
for i = 2, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'entry', ARGV[i])
end
return #ARGV - 1
