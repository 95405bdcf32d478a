/* status_map — one program ↔ campaign mapping and the translation of statuses across it.
 *
 * Owns `struct mapping` (program id, campaign id, enabled, explicit statusMap entries) and
 * its JSON form (stored in Redis and answered by the admin API), and the rule of SPEC
 * section 5: an explicit entry maps a Marketo program status to a Salesforce campaign member
 * status; any other label maps to the same label, case-sensitive, unless that label is
 * already the target (or source) of an explicit entry, in which case it has no counterpart.
 * The effective map is therefore one-to-one and is used in both directions. Marketo's
 * "Not in Program" is the absence of membership and never maps. Pure apart from cJSON. */
#ifndef CS_STATUS_MAP_H
#define CS_STATUS_MAP_H

#include "event.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAP_MAX_ENTRIES  50
#define STATUS_LABEL_MAX EV_STATUS_MAX /* bytes incl. NUL; Salesforce's Status holds 40 chars */
#define NOT_IN_PROGRAM   "Not in Program"

typedef struct {
    char marketo[STATUS_LABEL_MAX];
    char salesforce[STATUS_LABEL_MAX];
} status_pair;

typedef struct mapping {
    char program_id[24];
    char campaign_id[19];
    bool enabled;
    int nmap;
    status_pair map[MAP_MAX_ENTRIES];
    int64_t created_ms, updated_ms;
} mapping;

/* Marketo status → Salesforce status. False when the status has no counterpart. */
bool status_map_to_salesforce(const mapping *m, const char *marketo, char *out, size_t size);
/* Salesforce status → Marketo status. False when the status has no counterpart. */
bool status_map_to_marketo(const mapping *m, const char *salesforce, char *out, size_t size);

/* The mapping as stored/answered: {"programId","campaignId","enabled","statusMap",
 * "createdAt","updatedAt"} (times ISO-8601). Caller frees. */
char *mapping_to_json(const mapping *m);

/* Reads a stored mapping (mapping_to_json's form). 0, or -1 with err. */
int mapping_from_json(const char *json, size_t len, mapping *out, char *err, size_t errlen);

/* Reads an admin PUT body {"campaignId","enabled","statusMap","force"} into out (program
 * id given separately). Checks types, id forms, label lengths and that the explicit entries
 * are one-to-one. 0, or -1 with a sentence naming the field in err. */
int mapping_from_request(const char *program_id, const char *json, size_t len, mapping *out,
                         bool *force, char *err, size_t errlen);

/* The validation report (F11): both sides' status lists compared through the mapping. */
#define REPORT_MAX 200 /* statuses per side; channels hold a handful */
typedef struct {
    bool marketo_side; /* the status exists in Marketo (true) or in Salesforce (false) */
    char status[STATUS_LABEL_MAX];
    char fix[400];
} status_unmatched;

typedef struct {
    int nmatched;
    status_pair matched[REPORT_MAX];
    int nunmatched;
    status_unmatched unmatched[REPORT_MAX];
} status_report;

/* Compares the program's progression statuses (Marketo, "Not in Program" ignored) with the
 * campaign's member statuses (Salesforce) through m. Every Marketo status either matches
 * (its counterpart exists in Salesforce) or is unmatched with a one-line fix; every
 * Salesforce status that no Marketo status reaches is unmatched too. */
void status_map_compare(const mapping *m, const char *const *marketo, size_t nm,
                        const char *const *salesforce, size_t ns, status_report *out);

#endif
