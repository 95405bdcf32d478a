/* libFuzzer target: any bytes as an Outbound Message body. The parser must answer (accept or
 * a fault status) without crashing, leaking or reading out of bounds; an accepted message
 * must account for each of its 1 to 100 notifications once (event, dead letter or empty),
 * and yield events and dead letters whose queue form parses back. The pre-scan must let no
 * element with more than SF_XML_MAX_ATTRS attributes reach libxml2's SAX callbacks (the
 * parser's own check behind it names itself "found while parsing"). */
#include "sf_outbound.h"
#include "roundtrip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#define RX 1796000000000LL /* after the fixtures' changes, so that most are usable */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    setenv("TZ", "UTC", 1);
    if (sf_outbound_init() != 0) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    sf_outbound_result r;
    sf_outbound_parse((const char *)data, size, "00D000000000001AAA", RX, &r);
    if (r.status == 0) {
        size_t total = r.nevents + r.ndead + r.nempty;
        if (total == 0 || total > SF_OUTBOUND_MAX_NOTIFICATIONS) abort();
        for (size_t i = 0; i < r.nevents; i++) {
            if (r.events[i].source_ts_ms > RX + SF_OUTBOUND_MAX_SKEW_MS) abort();
            if (!r.events[i].campaign_id[0] || !r.events[i].status[0]) abort();
            check_roundtrip(&r.events[i]);
        }
        for (size_t i = 0; i < r.ndead; i++) {
            if (!r.dead[i].reason[0] || !event_text_ok(r.dead[i].reason)) abort();
            if (strncmp(r.dead[i].reason, "Notification ", 13) != 0) abort();
            check_roundtrip(&r.dead[i].ev);
        }
        if (strncmp(r.org_id, "00D000000000001", 15) != 0) abort();
    } else if (r.status != 400 && r.status != 403) {
        abort();
    } else {
        char over[128];
        snprintf(over, sizeof over, "an element has more than %d attributes (found while parsing)",
                 SF_XML_MAX_ATTRS);
        if (strcmp(r.message, over) == 0) abort(); /* the pre-scan let too many through */
    }
    sf_outbound_result_free(&r);
    return 0;
}
