/* libFuzzer target: any bytes as an Outbound Message body. The parser must answer (accept or
 * a fault status) without crashing, leaking or reading out of bounds, and an accepted
 * message must yield events whose queue form parses back. */
#include "sf_outbound.h"
#include "roundtrip.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    setenv("TZ", "UTC", 1);
    sf_outbound_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    sf_outbound_result r;
    sf_outbound_parse((const char *)data, size, "00D000000000001AAA", 1, &r);
    if (r.status == 0) {
        if (r.nevents + r.nempty == 0 || r.nevents > 100) abort();
        for (size_t i = 0; i < r.nevents; i++)
            check_roundtrip(&r.events[i]);
    } else if (r.status != 400 && r.status != 403) {
        abort();
    }
    sf_outbound_result_free(&r);
    return 0;
}
