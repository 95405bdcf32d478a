/* libFuzzer target: any bytes as an admin PUT /v1/mappings body, and as a stored mapping.
 * An accepted body must give a status map that is one-to-one both ways (a status translated
 * to the other side translates back to itself; "Not in Program" never maps), and its stored
 * form must read back to the same bytes; a refused body must say why. */
#include "status_map.h"

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

/* f(label) on one side, then back: the label itself, or no counterpart at all. */
static void check_both_ways(const mapping *m, const char *label) {
    char there[STATUS_LABEL_MAX], back[STATUS_LABEL_MAX];
    if (status_map_to_salesforce(m, label, there, sizeof there)) {
        if (strcmp(there, NOT_IN_PROGRAM) == 0) abort();
        if (!status_map_to_marketo(m, there, back, sizeof back) || strcmp(back, label) != 0)
            abort();
    }
    if (status_map_to_marketo(m, label, there, sizeof there)) {
        if (strcmp(there, NOT_IN_PROGRAM) == 0) abort();
        if (!status_map_to_salesforce(m, there, back, sizeof back) || strcmp(back, label) != 0)
            abort();
    }
}

/* The stored form read back gives the same stored form. */
static void check_stored_roundtrip(const mapping *m) {
    char *j = mapping_to_json(m);
    mapping back;
    char err[256];
    if (!j || mapping_from_json(j, strlen(j), &back, err, sizeof err) != 0) abort();
    char *j2 = mapping_to_json(&back);
    if (!j2 || strcmp(j, j2) != 0) abort();
    free(j);
    free(j2);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    const char *json = (const char *)data;
    mapping m;
    bool force;
    char err[256] = "";
    if (mapping_from_request("1001", json, size, &m, &force, err, sizeof err) == 0) {
        if (m.nmap < 0 || m.nmap > MAP_MAX_ENTRIES || strcmp(m.program_id, "1001") != 0) abort();
        for (int i = 0; i < m.nmap; i++) {
            char out[STATUS_LABEL_MAX];
            if (!status_map_to_salesforce(&m, m.map[i].marketo, out, sizeof out) ||
                strcmp(out, m.map[i].salesforce) != 0)
                abort();
            check_both_ways(&m, m.map[i].marketo);
            check_both_ways(&m, m.map[i].salesforce);
        }
        static const char *const common[] = {NOT_IN_PROGRAM, "Invited",   "Registered",
                                             "Attended",     "Responded", "Sent"};
        for (size_t i = 0; i < sizeof common / sizeof *common; i++)
            check_both_ways(&m, common[i]);
        check_stored_roundtrip(&m);
    } else if (!err[0]) {
        abort();
    }
    /* The same bytes as a stored mapping: read or refused, never a crash. */
    err[0] = '\0';
    if (mapping_from_json(json, size, &m, err, sizeof err) == 0)
        check_stored_roundtrip(&m);
    else if (!err[0])
        abort();
    return 0;
}
