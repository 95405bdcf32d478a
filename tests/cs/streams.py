"""The service's queue in Redis, read the way the tests check it: the two streams of events
(received from Salesforce, applied toward Marketo; received from Marketo), the two streams of
jobs' corrections, and what the workers have read of them and not yet acknowledged."""
import json

STREAM_SF, STREAM_MKTO = "cs:events:sf", "cs:events:mkto"
STREAMS = (STREAM_SF, STREAM_MKTO)
# Jobs' corrections (backfill, reconciliation), below the live queues.
FIX_STREAMS = ("cs:events:fix:sf", "cs:events:fix:mkto")


def _entry_order(entry_id):
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


def stream_events(redis, key=None):
    """The queued events, decoded, in stream order: [(id, event dict, fields dict)]; both
    queues merged by entry id (received order) unless key names one."""
    out = []
    for k in ([key] if key else STREAMS):
        for entry_id, flat in redis.cmd("XRANGE", k, "-", "+"):
            fields = dict(zip(flat[::2], flat[1::2]))
            out.append((entry_id, json.loads(fields["event"]), fields))
    return sorted(out, key=lambda e: _entry_order(e[0])) if not key else out


def queue_len(redis):
    """Entries in every queue stream, the corrections' too (read or not)."""
    return sum(redis.cmd("XLEN", k) for k in STREAMS + FIX_STREAMS)


def queue_pending(redis):
    """Entries read by a worker and not yet acknowledged, in every queue."""
    total = 0
    for k in STREAMS + FIX_STREAMS:
        try:
            total += redis.cmd("XPENDING", k, "workers")[0]
        except Exception:  # no group yet: nothing read
            pass
    return total
