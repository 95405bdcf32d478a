/* checks — what an operator asks before and while sync runs (F11 report, F12 checks).
 *
 * Owns: the status validation of a mapping (the program's channel statuses from Marketo and
 * the campaign's member statuses from Salesforce, compared through the mapping), the
 * start-up checks of `campaign-sync check` (configuration, Redis and its AOF, both CRMs'
 * credentials and rights, every mapping, the sync switch, Marketo's native campaign sync on
 * a mapped program), and a background cache of the CRM checks that /readyz lists without
 * failing on them. */
#ifndef CS_CHECKS_H
#define CS_CHECKS_H

#include "config.h"
#include "crm.h"
#include "status_map.h"

#include <stddef.h>
#include <stdio.h>

/* Reads both status lists and compares them. 0 with out filled; -1 when a CRM could not be
 * asked (err says which and why). */
int checks_validate(crm *c, const mapping *m, status_report *out, char *err, size_t errlen);

/* The report as the validation endpoint's JSON object; caller frees. */
char *checks_report_json(const mapping *m, const status_report *r);

/* `campaign-sync check`: prints one line per check to out; returns the exit status (0 when
 * no check FAILed). cfg_problems: how many configuration problems config_load reported. */
int checks_cli(const struct config *cfg, int cfg_problems, FILE *out);

/* The background refresh (every 60 s) of the CRM checks shown in /readyz: one token request
 * to each CRM. checks_ready_start: NULL when out of memory or its thread cannot start (the
 * checks then say "not checked yet"); checks_ready_stop stops and frees it (accepts NULL). */
typedef struct checks_ready checks_ready;
checks_ready *checks_ready_start(const struct config *cfg);
void checks_ready_stop(checks_ready *r);
/* routes_health checks (never required): "salesforce" and "marketo". ud: the checks_ready. */
int checks_ready_salesforce(void *ud, store *st, char *detail, size_t len);
int checks_ready_marketo(void *ud, store *st, char *detail, size_t len);

#endif
