"""cs: the one Python harness of campaign-sync's integration tests, its simulators' tests, the
chaos suite (tests/chaos/) and the benchmarks (bench/). `import cs` needs tests/ on the module
path: pytest.ini gives it to pytest; the Makefile and bench/*.sh set PYTHONPATH for the rest.

    procs    the processes: Redis, the real binary (Service, Services), the CRM simulators
             (Sim), their environment (base_env, crm_env, crm_urls), commands run to completion
    web      exact HTTP over loopback, the harness's secrets and the webhooks' headers
    wire     what the CRMs send, built as they build it (Outbound Messages, Marketo webhooks
             rendered as Marketo renders its tokens), and the service's calls told apart
    streams  the queue in Redis (both streams, read and unacknowledged entries)
    metrics  Prometheus text: one series, sums by label, promtool
    world    World: Redis, both simulators and the service's processes, with the helpers of
             both sync directions; Person
    clients  the real CRM clients from npm that the simulators' tests run (imported apart)
    openapi  openapi/openapi.yaml as the tests check answers against it (imported apart)

Everything of procs, web, wire, streams, metrics and world is also here, as cs.<name>."""
from .metrics import metric_sum, metric_value, parse_metrics, promtool_check
from .procs import (BIN, DATA, NOWHERE_CRMS, PYTHON, QUIET, ROOT, SANITIZED, SANITIZER_RE,
                    TEST_SETTINGS, TEST_TIMINGS, Redis, Service, Services, Sim,
                    assert_still_serving, base_env, crm_env, crm_urls, data, free_port,
                    make_workdir, remember, rss_kib, run_command, stop_all, wait_until)
from .streams import STREAM_MKTO, STREAM_SF, STREAMS, queue_len, queue_pending, stream_events
from .web import (ADMIN_TOKEN, MK_HEADERS, ORG_ID, SF_HEADERS, WEBHOOK_SECRET, Response,
                  admin_headers, request)
from .wire import (BASE, DELETE_CALL, HUMAN, INTEGRATION, MEMBERS_READ, OM_FIELDS, OM_NS,
                   STATUS_CALL, at, changed, hook, is_cm_write, is_lead_create, marketo_time,
                   notification_id, om_body, outbound_message, soap_time, to18, token)
from .world import RESPONDED, START, TOWARD_MARKETO, WEBINAR, Person, World, no_dead_letters
