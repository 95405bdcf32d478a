/* roundtrip — `campaign-sync check --roundtrip PROGRAM_ID`: proves a running service with the
 * real CRMs before go-live.
 *
 * Owns the round trip of one marked test person (plan.h, plan_roundtrip_person) through a
 * mapped program and campaign: created in Marketo and given a program status, awaited as a
 * campaign member in Salesforce; its member status changed in Salesforce, awaited in Marketo;
 * then removed from the program and the campaign and deleted on both sides, also when a step
 * failed. Talks only to the two CRMs (with the service's own credentials) and to Redis (the
 * mapping, the sync switch, dead letters naming the test person): the service itself must run
 * elsewhere (`serve`, or `ingest` + `worker`), reachable by both CRMs' notifications. */
#ifndef CS_ROUNDTRIP_H
#define CS_ROUNDTRIP_H

#include "config.h"

#include <stdio.h>

#define ROUNDTRIP_TIMEOUT_S     120  /* default wait for each side */
#define ROUNDTRIP_TIMEOUT_MAX_S 3600 /* --timeout's ceiling */

/* Runs the round trip for program_id (digits), waiting at most timeout_s for each change to
 * reach the other side. Prints one line per step to out: "ok", "WARN" or "FAIL", the step, its
 * time in ms, what it saw and, on FAIL, which setting or CRM screen to check; then a summary.
 * SIGINT and SIGTERM end the current step and go on to the clean-up. Returns the exit status:
 * 0 when no step FAILed, 1 otherwise. */
int roundtrip_run(const struct config *cfg, const char *program_id, int timeout_s, FILE *out);

#endif
