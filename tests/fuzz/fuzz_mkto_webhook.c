/* libFuzzer target: any bytes as a Marketo webhook body. Either every event is accepted and
 * round-trips through the queue form, or the request is refused with 400 and no events. */
#include "mkto_webhook.h"
#include "roundtrip.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    setenv("TZ", "UTC", 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    mkto_webhook_result r;
    mkto_webhook_parse((const char *)data, size, 1795946400000LL, &r);
    if (r.status == 0) {
        if (r.nevents > MKTO_WEBHOOK_MAX_EVENTS) abort();
        for (size_t i = 0; i < r.nevents; i++)
            check_roundtrip(&r.events[i]);
    } else if (r.status != 400 || r.events || r.nevents || !r.message[0]) {
        abort();
    }
    mkto_webhook_result_free(&r);
    return 0;
}
