/* plan: the sync rules of SPEC section 8 (and F7, F10, F11) for one event, given its mapping
 * and the member's recorded state, as include/plan.h states them:
 *   1. a Salesforce change by SF_INTEGRATION_USER_ID is our own write: echo;
 *   2. mapping lookup (unmapped / park / F7 needs none);
 *   3. status translation (no counterpart → dead letter);
 *   4. newest source time wins (stale);
 *   5. nothing to write → echo or duplicate;
 * plus the member state to record (`next`) and the convergence property of SPEC 8:
 * "Duplicates and reordering on delivery leave the same end state as in-order delivery". */
#include "unit.h"

#include "plan.h"

/* ------------------------------------------------------------------------------------------
 * Fixtures: one mapped pair, events built by hand, recorded states. */

#define PROG       "1001"
#define CAMP       "7015g000000CampAAA" /* 18-character form */
#define CAMP15     "7015g000000Camp"    /* its 15-character form */
#define OTHER_CAMP "7015g000000OthrAAA"
#define IUSER      "005000000000001AAA" /* SF_INTEGRATION_USER_ID */
#define IUSER15    "005000000000001"
#define SOMEONE    "0055g000000UserAAA"
#define CM_ID      "00v5g000000MembAAA"
#define LEAD_ID    "00Q5g000000LeadAAA"
#define CONTACT_ID "0035g000000CntcAAA"
#define T0         1795946400000LL /* 2026-11-29T10:00:00Z */
#define T(n)       (T0 + (int64_t)(n)*1000)

/* Marketo "Registered" ↔ Salesforce "Signed Up", "Attended" ↔ "Came"; other labels match
 * themselves, except "Signed Up"/"Came" in Marketo and "Registered"/"Attended" in
 * Salesforce, which have no counterpart. */
static mapping the_map(bool entries, bool enabled) {
    mapping m;
    memset(&m, 0, sizeof m);
    strcpy(m.program_id, PROG);
    strcpy(m.campaign_id, CAMP);
    m.enabled = enabled;
    if (entries) {
        strcpy(m.map[0].marketo, "Registered");
        strcpy(m.map[0].salesforce, "Signed Up");
        strcpy(m.map[1].marketo, "Attended");
        strcpy(m.map[1].salesforce, "Came");
        m.nmap = 2;
    }
    m.created_ms = m.updated_ms = T0 - 86400000;
    return m;
}

static bool is_program_type(event_type t) {
    return t == EV_MEMBER_STATUS_CHANGED || t == EV_MEMBER_REMOVED;
}

/* A Marketo event: program events carry the program id, F7 actions the campaign id.
 * ts 0: no source time (received_ms rules then). */
static event mkto_ev(event_type type, const char *status, int64_t ts) {
    event e;
    memset(&e, 0, sizeof e);
    e.source = SRC_MARKETO;
    e.type = type;
    snprintf(e.id, sizeof e.id, "e:%d-%lld", (int)type, (long long)ts);
    if (is_program_type(type))
        strcpy(e.program_id, PROG);
    else
        strcpy(e.campaign_id, CAMP);
    strcpy(e.mkto_lead_id, "123");
    strcpy(e.email, "ann.lee@example.com");
    strcpy(e.first_name, "Ann");
    strcpy(e.last_name, "Lee");
    strcpy(e.company, "Acme Corp");
    if (status) strcpy(e.status, status);
    e.source_ts_ms = ts;
    e.received_ms = ts ? ts + 700 : T(50);
    return e;
}

/* A Salesforce event (Outbound Message or deleted-records poll). by NULL: another user. */
static event sf_ev(event_type type, const char *status, int64_t ts, const char *by) {
    event e;
    memset(&e, 0, sizeof e);
    e.source = SRC_SALESFORCE;
    e.type = type;
    snprintf(e.id, sizeof e.id, "04l5g00000%08lld", (long long)(ts / 1000 % 100000000));
    strcpy(e.campaign_id, CAMP);
    strcpy(e.member_id, CM_ID);
    if (type == EV_SF_MEMBER_CHANGED) {
        strcpy(e.sf_lead_id, LEAD_ID);
        strcpy(e.email, "ann.lee@example.com");
        strcpy(e.modified_by, by ? by : SOMEONE);
    }
    if (status) strcpy(e.status, status);
    e.source_ts_ms = ts;
    e.received_ms = ts ? ts + 900 : T(50);
    return e;
}

/* A recorded state: both sides given, ts and the side written last. */
static member_state rec(bool sf_member, const char *sf_status, bool mk_member,
                        const char *mk_status, int64_t ts, event_source src) {
    member_state s;
    memset(&s, 0, sizeof s);
    s.known = true;
    s.sf_member = sf_member;
    strcpy(s.sf_status, sf_status);
    s.mkto_member = mk_member;
    strcpy(s.mkto_status, mk_status);
    strcpy(s.cm_id, CM_ID); /* the one the events name (see deletion_of_a_replaced_member) */
    strcpy(s.sf_person, "00Q5g000000OldLAAA");
    strcpy(s.mkto_lead, "99");
    strcpy(s.email, "old@example.com");
    s.ts = ts;
    s.updated_ms = T(-1);
    s.src = src;
    return s;
}

static plan_result plan(const event *e, const mapping *m, const member_state *st) {
    plan_result r;
    memset(&r, 0x5A, sizeof r); /* plan_event must set every field it answers */
    plan_event(e, m, st, IUSER, &r);
    return r;
}

static const char *kind_name(plan_kind k) {
    switch (k) {
    case PLAN_APPLY: return "APPLY";
    case PLAN_DROP: return "DROP";
    case PLAN_PARK: return "PARK";
    case PLAN_DEAD: return "DEAD";
    case PLAN_NEED_STATUS: return "NEED_STATUS";
    }
    return "?";
}

static void describe(char *buf, size_t n, const plan_result *r) {
    if (r->kind == PLAN_DROP)
        snprintf(buf, n, "DROP(%s)", plan_drop_reason_name(r->reason));
    else if (r->kind == PLAN_APPLY)
        snprintf(buf, n, "APPLY(to_sf=%d sf=%d \"%s\" to_mkto=%d mk=%d \"%s\")", r->to_sf,
                 r->sf_member, r->sf_member ? r->sf_status : "", r->to_mkto, r->mkto_member,
                 r->mkto_member ? r->mkto_status : "");
    else if (r->kind == PLAN_DEAD)
        snprintf(buf, n, "DEAD(%.300s)", r->message);
    else
        snprintf(buf, n, "%s", kind_name(r->kind));
}

/* ------------------------------------------------------------------------------------------
 * Table-driven single-event cases. */

typedef enum {
    M_NONE,           /* no mapping found */
    M_PLAIN,          /* mapped, no statusMap entries */
    M_ENTRIES,        /* mapped, Registered↔Signed Up, Attended↔Came */
    M_DISABLED,       /* mapped with entries, disabled */
    M_OTHER_PROGRAM,  /* a mapping of program 2002 (same campaign) passed in */
    M_OTHER_CAMPAIGN, /* a mapping of program 1001 to another campaign passed in */
    M_CAMP15,         /* mapped with entries, campaign id stored in its 15-character form */
} map_kind;

typedef enum {
    S_NONE,      /* st == NULL */
    S_UNKNOWN,   /* known == false */
    S_REG_MK,    /* Signed Up / Registered, written from Marketo, ts T(5) */
    S_REG_SF,    /* the same, written from Salesforce */
    S_GONE_MK,   /* not a member on either side, written from Marketo, ts T(5) */
    S_GONE_SF,   /* the same, written from Salesforce */
    S_SF_AHEAD,  /* Salesforce "Came", Marketo still "Registered" (the Marketo write was
                    not done, e.g. skipped by Marketo), written from Salesforce, ts T(5) */
    S_PLAIN_REG, /* Registered / Registered (plain map), from Marketo, ts T(5) */
} state_kind;

typedef struct {
    const char *name;
    event ev;
    map_kind map;
    state_kind st;
    plan_kind kind;
    drop_reason reason;     /* PLAN_DROP */
    event_source need_from; /* PLAN_NEED_STATUS */
    /* PLAN_APPLY */
    bool to_sf, sf_member;
    const char *sf_status;
    bool to_mkto, mkto_member;
    const char *mkto_status;
    const char *program_id, *campaign_id; /* out->program_id / campaign_id when non-NULL */
    const char *msg[4];                   /* PLAN_DEAD: substrings of the message */
} plan_case;

static mapping make_mapping(map_kind k) {
    mapping m = the_map(k != M_PLAIN, k != M_DISABLED);
    if (k == M_OTHER_PROGRAM) strcpy(m.program_id, "2002");
    if (k == M_OTHER_CAMPAIGN) strcpy(m.campaign_id, OTHER_CAMP);
    if (k == M_CAMP15) strcpy(m.campaign_id, CAMP15);
    return m;
}

static member_state make_state(state_kind k) {
    switch (k) {
    case S_NONE:
    case S_UNKNOWN: {
        member_state s;
        memset(&s, 0, sizeof s);
        return s;
    }
    case S_REG_MK: return rec(true, "Signed Up", true, "Registered", T(5), SRC_MARKETO);
    case S_REG_SF: return rec(true, "Signed Up", true, "Registered", T(5), SRC_SALESFORCE);
    case S_GONE_MK: return rec(false, "", false, "", T(5), SRC_MARKETO);
    case S_GONE_SF: return rec(false, "", false, "", T(5), SRC_SALESFORCE);
    case S_SF_AHEAD: return rec(true, "Came", true, "Registered", T(5), SRC_SALESFORCE);
    case S_PLAIN_REG: return rec(true, "Registered", true, "Registered", T(5), SRC_MARKETO);
    }
    fail();
    return rec(false, "", false, "", 0, SRC_MARKETO);
}

static void run_cases(const plan_case *cases, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const plan_case *c = &cases[i];
        mapping m = make_mapping(c->map);
        member_state st = make_state(c->st);
        plan_result r = plan(&c->ev, c->map == M_NONE ? NULL : &m, c->st == S_NONE ? NULL : &st);
        char got[600];
        describe(got, sizeof got, &r);
        if (r.kind != c->kind) fail_msg("%s: got %s, want %s", c->name, got, kind_name(c->kind));
        switch (c->kind) {
        case PLAN_DROP:
            if (r.reason != c->reason)
                fail_msg("%s: got %s, want DROP(%s)", c->name, got,
                         plan_drop_reason_name(c->reason));
            break;
        case PLAN_NEED_STATUS:
            if (r.need_from != c->need_from)
                fail_msg("%s: need_from %s, want %s", c->name, event_source_name(r.need_from),
                         event_source_name(c->need_from));
            break;
        case PLAN_DEAD:
            for (int j = 0; j < 4 && c->msg[j]; j++)
                if (!strstr(r.message, c->msg[j]))
                    fail_msg("%s: message \"%s\" does not name \"%s\"", c->name, r.message,
                             c->msg[j]);
            break;
        case PLAN_APPLY: {
            bool ok = r.to_sf == c->to_sf && r.to_mkto == c->to_mkto;
            if (c->to_sf) {
                ok = ok && r.sf_member == c->sf_member;
                if (c->sf_member) ok = ok && strcmp(r.sf_status, c->sf_status) == 0;
            }
            if (c->to_mkto) {
                ok = ok && r.mkto_member == c->mkto_member;
                if (c->mkto_member) ok = ok && strcmp(r.mkto_status, c->mkto_status) == 0;
            }
            if (!ok)
                fail_msg("%s: got %s, want APPLY(to_sf=%d sf=%d \"%s\" to_mkto=%d mk=%d \"%s\")",
                         c->name, got, c->to_sf, c->sf_member, c->sf_status ? c->sf_status : "",
                         c->to_mkto, c->mkto_member, c->mkto_status ? c->mkto_status : "");
            /* A removal carries no status. */
            if (c->to_sf && !c->sf_member) assert_string_equal(r.sf_status, "");
            if (c->to_mkto && !c->mkto_member) assert_string_equal(r.mkto_status, "");
            if (c->program_id && strcmp(r.program_id, c->program_id) != 0)
                fail_msg("%s: program_id \"%s\", want \"%s\"", c->name, r.program_id,
                         c->program_id);
            if (c->campaign_id && strcmp(r.campaign_id, c->campaign_id) != 0)
                fail_msg("%s: campaign_id \"%s\", want \"%s\"", c->name, r.campaign_id,
                         c->campaign_id);
            break;
        }
        case PLAN_PARK: break;
        }
    }
}

#define RUN(cases) run_cases(cases, sizeof cases / sizeof cases[0])
#define MSC        EV_MEMBER_STATUS_CHANGED
#define MRM        EV_MEMBER_REMOVED
#define ADD        EV_ADD_TO_CAMPAIGN
#define CHG        EV_CHANGE_CAMPAIGN_STATUS
#define REM        EV_REMOVE_FROM_CAMPAIGN
#define SFC        EV_SF_MEMBER_CHANGED
#define SFD        EV_SF_MEMBER_DELETED

/* ------------------------------------------------------------------------------------------
 * Marketo program events (F4, F5, F11; plan.h rules 2–3; SPEC 7 "status absent: read from
 * Marketo"; "Not in Program" means removal). */

static void marketo_program_events(void **state) {
    (void)state;
    const plan_case cases[] = {
        {.name = "status, same label",
         .ev = mkto_ev(MSC, "Registered", T(10)),
         .map = M_PLAIN,
         .kind = PLAN_APPLY,
         .to_sf = true,
         .sf_member = true,
         .sf_status = "Registered",
         .program_id = PROG,
         .campaign_id = CAMP},
        {.name = "status via statusMap entry",
         .ev = mkto_ev(MSC, "Registered", T(10)),
         .map = M_ENTRIES,
         .kind = PLAN_APPLY,
         .to_sf = true,
         .sf_member = true,
         .sf_status = "Signed Up",
         .program_id = PROG,
         .campaign_id = CAMP},
        {.name = "second entry",
         .ev = mkto_ev(MSC, "Attended", T(10)),
         .map = M_ENTRIES,
         .kind = PLAN_APPLY,
         .to_sf = true,
         .sf_member = true,
         .sf_status = "Came"},
        {.name = "label not in the map",
         .ev = mkto_ev(MSC, "No Show", T(10)),
         .map = M_ENTRIES,
         .kind = PLAN_APPLY,
         .to_sf = true,
         .sf_member = true,
         .sf_status = "No Show"},
        {.name = "known state, new status",
         .ev = mkto_ev(MSC, "Attended", T(10)),
         .map = M_ENTRIES,
         .st = S_REG_MK,
         .kind = PLAN_APPLY,
         .to_sf = true,
         .sf_member = true,
         .sf_status = "Came"},
        {.name = "no counterpart → dead letter",
         .ev = mkto_ev(MSC, "Signed Up", T(10)),
         .map = M_ENTRIES,
         .kind = PLAN_DEAD,
         .msg = {PROG, CAMP, "\"Signed Up\""}},
        {.name = "no counterpart, known state",
         .ev = mkto_ev(MSC, "Came", T(10)),
         .map = M_ENTRIES,
         .st = S_REG_MK,
         .kind = PLAN_DEAD,
         .msg = {PROG, CAMP, "Came"}},
        {.name = "case differs from an entry: same-label rule",
         .ev = mkto_ev(MSC, "registered", T(10)),
         .map = M_ENTRIES,
         .kind = PLAN_APPLY,
         .to_sf = true,
         .sf_member = true,
         .sf_status = "registered"},
        {.name = "no status → read it from Marketo",
         .ev = mkto_ev(MSC, NULL, T(10)),
         .map = M_ENTRIES,
         .kind = PLAN_NEED_STATUS,
         .need_from = SRC_MARKETO},
        {.name = "no status, known state",
         .ev = mkto_ev(MSC, NULL, T(10)),
         .map = M_ENTRIES,
         .st = S_REG_MK,
         .kind = PLAN_NEED_STATUS,
         .need_from = SRC_MARKETO},
        {.name = "Not in Program → removal",
         .ev = mkto_ev(MSC, NOT_IN_PROGRAM, T(10)),
         .map = M_ENTRIES,
         .kind = PLAN_APPLY,
         .to_sf = true,
         .sf_member = false,
         .program_id = PROG,
         .campaign_id = CAMP},
        {.name = "Not in Program, known member",
         .ev = mkto_ev(MSC, NOT_IN_PROGRAM, T(10)),
         .map = M_PLAIN,
         .st = S_PLAIN_REG,
         .kind = PLAN_APPLY,
         .to_sf = true,
         .sf_member = false},
        {.name = "member_removed without status",
         .ev = mkto_ev(MRM, NULL, T(10)),
         .map = M_ENTRIES,
         .kind = PLAN_APPLY,
         .to_sf = true,
         .sf_member = false},
        {.name = "member_removed with a status",
         .ev = mkto_ev(MRM, "Registered", T(10)),
         .map = M_ENTRIES,
         .kind = PLAN_APPLY,
         .to_sf = true,
         .sf_member = false},
        {.name = "member_removed with an untranslatable status",
         .ev = mkto_ev(MRM, "Signed Up", T(10)),
         .map = M_ENTRIES,
         .kind = PLAN_APPLY,
         .to_sf = true,
         .sf_member = false},
        {.name = "member_removed, known member",
         .ev = mkto_ev(MRM, NULL, T(10)),
         .map = M_ENTRIES,
         .st = S_REG_SF,
         .kind = PLAN_APPLY,
         .to_sf = true,
         .sf_member = false},
    };
    RUN(cases);
}

/* The dead letter names the program, the campaign and the status (F11), in a sentence a
 * person can act on. */
static void dead_letter_message(void **state) {
    (void)state;
    mapping m = the_map(true, true);
    event e = mkto_ev(MSC, "Signed Up", T(10));
    plan_result r = plan(&e, &m, NULL);
    assert_int_equal(r.kind, PLAN_DEAD);
    assert_non_null(strstr(r.message, "program 1001"));
    assert_non_null(strstr(r.message, "campaign 7015g000000CampAAA"));
    assert_non_null(strstr(r.message, "\"Signed Up\""));
    assert_non_null(strstr(r.message, "replay"));
    /* The other direction names them too. */
    event s = sf_ev(SFC, "Registered", T(10), NULL);
    r = plan(&s, &m, NULL);
    assert_int_equal(r.kind, PLAN_DEAD);
    assert_non_null(strstr(r.message, "program 1001"));
    assert_non_null(strstr(r.message, "campaign 7015g000000CampAAA"));
    assert_non_null(strstr(r.message, "\"Registered\""));
}

/* ------------------------------------------------------------------------------------------
 * Mapping lookup (plan.h rule 2; F1, F10): program events need the program's mapping,
 * Salesforce events the campaign's; a mapping of another pair is no mapping; a disabled
 * mapping parks the event ("nothing is lost"). */

static void mapping_lookup_and_park(void **state) {
    (void)state;
    const plan_case cases[] = {
        /* unmapped */
        {.name = "program event, no mapping",
         .ev = mkto_ev(MSC, "Registered", T(10)),
         .map = M_NONE,
         .kind = PLAN_DROP,
         .reason = DROP_UNMAPPED},
        {.name = "program event without status, no mapping",
         .ev = mkto_ev(MSC, NULL, T(10)),
         .map = M_NONE,
         .kind = PLAN_DROP,
         .reason = DROP_UNMAPPED},
        {.name = "member_removed, no mapping",
         .ev = mkto_ev(MRM, NULL, T(10)),
         .map = M_NONE,
         .kind = PLAN_DROP,
         .reason = DROP_UNMAPPED},
        {.name = "program event, another program's mapping",
         .ev = mkto_ev(MSC, "Registered", T(10)),
         .map = M_OTHER_PROGRAM,
         .kind = PLAN_DROP,
         .reason = DROP_UNMAPPED},
        {.name = "program event, known state, no mapping",
         .ev = mkto_ev(MSC, "Registered", T(10)),
         .map = M_NONE,
         .st = S_REG_MK,
         .kind = PLAN_DROP,
         .reason = DROP_UNMAPPED},
        {.name = "SF change, no mapping",
         .ev = sf_ev(SFC, "Sent", T(10), NULL),
         .map = M_NONE,
         .kind = PLAN_DROP,
         .reason = DROP_UNMAPPED},
        {.name = "SF deletion, no mapping",
         .ev = sf_ev(SFD, NULL, T(10), NULL),
         .map = M_NONE,
         .kind = PLAN_DROP,
         .reason = DROP_UNMAPPED},
        {.name = "SF change, another campaign's mapping",
         .ev = sf_ev(SFC, "Sent", T(10), NULL),
         .map = M_OTHER_CAMPAIGN,
         .kind = PLAN_DROP,
         .reason = DROP_UNMAPPED},
        {.name = "SF change, untranslatable status, no mapping",
         .ev = sf_ev(SFC, "Registered", T(10), NULL),
         .map = M_NONE,
         .kind = PLAN_DROP,
         .reason = DROP_UNMAPPED},
        /* mapped by either form of the campaign id */
        {.name = "SF change, mapping holds the 15-char id",
         .ev = sf_ev(SFC, "Signed Up", T(10), NULL),
         .map = M_CAMP15,
         .kind = PLAN_APPLY,
         .to_mkto = true,
         .mkto_member = true,
         .mkto_status = "Registered"},
        /* disabled: park, whatever the event */
        {.name = "program event, disabled",
         .ev = mkto_ev(MSC, "Registered", T(10)),
         .map = M_DISABLED,
         .kind = PLAN_PARK},
        {.name = "program event without status, disabled",
         .ev = mkto_ev(MSC, NULL, T(10)),
         .map = M_DISABLED,
         .kind = PLAN_PARK},
        {.name = "untranslatable status, disabled",
         .ev = mkto_ev(MSC, "Signed Up", T(10)),
         .map = M_DISABLED,
         .kind = PLAN_PARK},
        {.name = "Not in Program, disabled",
         .ev = mkto_ev(MSC, NOT_IN_PROGRAM, T(10)),
         .map = M_DISABLED,
         .kind = PLAN_PARK},
        {.name = "member_removed, disabled",
         .ev = mkto_ev(MRM, NULL, T(10)),
         .map = M_DISABLED,
         .kind = PLAN_PARK},
        {.name = "program event, disabled, known state",
         .ev = mkto_ev(MSC, "Attended", T(10)),
         .map = M_DISABLED,
         .st = S_REG_MK,
         .kind = PLAN_PARK},
        {.name = "SF change, disabled",
         .ev = sf_ev(SFC, "Signed Up", T(10), NULL),
         .map = M_DISABLED,
         .kind = PLAN_PARK},
        {.name = "SF deletion, disabled",
         .ev = sf_ev(SFD, NULL, T(10), NULL),
         .map = M_DISABLED,
         .kind = PLAN_PARK},
        {.name = "F7 add on a mapped campaign, disabled",
         .ev = mkto_ev(ADD, "Sent", T(10)),
         .map = M_DISABLED,
         .kind = PLAN_PARK},
        {.name = "F7 add without status, disabled",
         .ev = mkto_ev(ADD, NULL, T(10)),
         .map = M_DISABLED,
         .kind = PLAN_PARK},
        {.name = "F7 change, disabled",
         .ev = mkto_ev(CHG, "Sent", T(10)),
         .map = M_DISABLED,
         .kind = PLAN_PARK},
        {.name = "F7 remove, disabled",
         .ev = mkto_ev(REM, NULL, T(10)),
         .map = M_DISABLED,
         .kind = PLAN_PARK},
    };
    RUN(cases);
}

/* A disabled mapping of another pair is no mapping: unmapped, not parked. */
static void disabled_mapping_of_another_pair(void **state) {
    (void)state;
    mapping other = the_map(true, false);
    strcpy(other.program_id, "2002");
    strcpy(other.campaign_id, OTHER_CAMP);
    event e = mkto_ev(MSC, "Registered", T(10));
    plan_result r = plan(&e, &other, NULL);
    assert_int_equal(r.kind, PLAN_DROP);
    assert_int_equal(r.reason, DROP_UNMAPPED);
    event s = sf_ev(SFC, "Sent", T(10), NULL);
    r = plan(&s, &other, NULL);
    assert_int_equal(r.kind, PLAN_DROP);
    assert_int_equal(r.reason, DROP_UNMAPPED);
    /* An F7 action on an unmapped campaign goes ahead (to Salesforce only). */
    event f = mkto_ev(ADD, "Sent", T(10));
    r = plan(&f, &other, NULL);
    assert_int_equal(r.kind, PLAN_APPLY);
    assert_true(r.to_sf);
    assert_false(r.to_mkto);
}

/* 15-character Salesforce ids are case-sensitive: a campaign id differing in case is
 * another campaign. */
static void campaign_ids_are_case_sensitive(void **state) {
    (void)state;
    mapping m = the_map(false, true);
    event s = sf_ev(SFC, "Sent", T(10), NULL);
    strcpy(s.campaign_id, "7015G000000CAMPAAA");
    plan_result r = plan(&s, &m, NULL);
    assert_int_equal(r.kind, PLAN_DROP);
    assert_int_equal(r.reason, DROP_UNMAPPED);
}

/* ------------------------------------------------------------------------------------------
 * F7 flow actions (SPEC 7: need no mapping; when the campaign is mapped, also reach the
 * program; add_to_campaign without status uses the campaign's default member status). */

static void flow_actions(void **state) {
    (void)state;
    event add15 = mkto_ev(ADD, "Signed Up", T(10));
    strcpy(add15.campaign_id, CAMP15);
    const plan_case cases[] = {
        /* unmapped: Salesforce only, the campaign from the event */
        {.name = "add, unmapped",
         .ev = mkto_ev(ADD, "Sent", T(10)),
         .map = M_NONE,
         .kind = PLAN_APPLY,
         .to_sf = true,
         .sf_member = true,
         .sf_status = "Sent",
         .program_id = "",
         .campaign_id = CAMP},
        {.name = "change, unmapped",
         .ev = mkto_ev(CHG, "Responded", T(10)),
         .map = M_NONE,
         .kind = PLAN_APPLY,
         .to_sf = true,
         .sf_member = true,
         .sf_status = "Responded",
         .program_id = "",
         .campaign_id = CAMP},
        {.name = "remove, unmapped",
         .ev = mkto_ev(REM, NULL, T(10)),
         .map = M_NONE,
         .kind = PLAN_APPLY,
         .to_sf = true,
         .sf_member = false,
         .program_id = "",
         .campaign_id = CAMP},
        {.name = "add, status that a mapping would refuse, unmapped",
         .ev = mkto_ev(ADD, "Registered", T(10)),
         .map = M_NONE,
         .kind = PLAN_APPLY,
         .to_sf = true,
         .sf_member = true,
         .sf_status = "Registered"},
        {.name = "add, another campaign's mapping passed in",
         .ev = mkto_ev(ADD, "Sent", T(10)),
         .map = M_OTHER_CAMPAIGN,
         .kind = PLAN_APPLY,
         .to_sf = true,
         .sf_member = true,
         .sf_status = "Sent",
         .program_id = "",
         .campaign_id = CAMP},
        {.name = "add, unmapped, known state",
         .ev = mkto_ev(ADD, "Sent", T(10)),
         .map = M_NONE,
         .st = S_GONE_MK,
         .kind = PLAN_APPLY,
         .to_sf = true,
         .sf_member = true,
         .sf_status = "Sent"},
        /* mapped: Salesforce as given, Marketo translated Salesforce→Marketo */
        {.name = "add, mapped",
         .ev = mkto_ev(ADD, "Signed Up", T(10)),
         .map = M_ENTRIES,
         .kind = PLAN_APPLY,
         .to_sf = true,
         .sf_member = true,
         .sf_status = "Signed Up",
         .to_mkto = true,
         .mkto_member = true,
         .mkto_status = "Registered",
         .program_id = PROG,
         .campaign_id = CAMP},
        {.name = "add, mapped, same label",
         .ev = mkto_ev(ADD, "Sent", T(10)),
         .map = M_ENTRIES,
         .kind = PLAN_APPLY,
         .to_sf = true,
         .sf_member = true,
         .sf_status = "Sent",
         .to_mkto = true,
         .mkto_member = true,
         .mkto_status = "Sent"},
        {.name = "add with the 15-char campaign id, mapped",
         .ev = add15,
         .map = M_ENTRIES,
         .kind = PLAN_APPLY,
         .to_sf = true,
         .sf_member = true,
         .sf_status = "Signed Up",
         .to_mkto = true,
         .mkto_member = true,
         .mkto_status = "Registered",
         .program_id = PROG},
        {.name = "change, mapped",
         .ev = mkto_ev(CHG, "Came", T(10)),
         .map = M_ENTRIES,
         .st = S_REG_MK,
         .kind = PLAN_APPLY,
         .to_sf = true,
         .sf_member = true,
         .sf_status = "Came",
         .to_mkto = true,
         .mkto_member = true,
         .mkto_status = "Attended"},
        {.name = "remove, mapped",
         .ev = mkto_ev(REM, NULL, T(10)),
         .map = M_ENTRIES,
         .st = S_REG_MK,
         .kind = PLAN_APPLY,
         .to_sf = true,
         .sf_member = false,
         .to_mkto = true,
         .mkto_member = false,
         .program_id = PROG,
         .campaign_id = CAMP},
        {.name = "remove with a status, mapped",
         .ev = mkto_ev(REM, "Registered", T(10)),
         .map = M_ENTRIES,
         .kind = PLAN_APPLY,
         .to_sf = true,
         .sf_member = false,
         .to_mkto = true,
         .mkto_member = false},
        {.name = "add, mapped, no Marketo counterpart",
         .ev = mkto_ev(ADD, "Registered", T(10)),
         .map = M_ENTRIES,
         .kind = PLAN_DEAD,
         .msg = {PROG, CAMP, "\"Registered\""}},
        {.name = "change, mapped, no Marketo counterpart",
         .ev = mkto_ev(CHG, "Attended", T(10)),
         .map = M_ENTRIES,
         .st = S_REG_MK,
         .kind = PLAN_DEAD,
         .msg = {PROG, CAMP, "Attended"}},
        {.name = "add Not in Program, mapped: no counterpart",
         .ev = mkto_ev(ADD, NOT_IN_PROGRAM, T(10)),
         .map = M_PLAIN,
         .kind = PLAN_DEAD,
         .msg = {PROG, CAMP, NOT_IN_PROGRAM}},
        /* no status */
        {.name = "add without status, unmapped",
         .ev = mkto_ev(ADD, NULL, T(10)),
         .map = M_NONE,
         .kind = PLAN_NEED_STATUS,
         .need_from = SRC_SALESFORCE},
        {.name = "add without status, mapped",
         .ev = mkto_ev(ADD, NULL, T(10)),
         .map = M_ENTRIES,
         .kind = PLAN_NEED_STATUS,
         .need_from = SRC_SALESFORCE},
        {.name = "change without status, unmapped",
         .ev = mkto_ev(CHG, NULL, T(10)),
         .map = M_NONE,
         .kind = PLAN_DEAD,
         .msg = {CAMP, "status"}},
        {.name = "change without status, mapped",
         .ev = mkto_ev(CHG, NULL, T(10)),
         .map = M_ENTRIES,
         .kind = PLAN_DEAD,
         .msg = {CAMP, "status"}},
        {.name = "remove without status, unmapped",
         .ev = mkto_ev(REM, NULL, T(10)),
         .map = M_NONE,
         .kind = PLAN_APPLY,
         .to_sf = true,
         .sf_member = false},
    };
    RUN(cases);
}

/* ------------------------------------------------------------------------------------------
 * Salesforce campaign member events (F4, F5, F8; plan.h rules 1–3; SPEC 4
 * SF_INTEGRATION_USER_ID, 15- and 18-character ids; SPEC 1: removals from the deleted-records
 * poll). */

static void salesforce_events(void **state) {
    (void)state;
    const plan_case cases[] = {
        /* our own write: echo, before anything else */
        {.name = "by the integration user (18)",
         .ev = sf_ev(SFC, "Signed Up", T(10), IUSER),
         .map = M_ENTRIES,
         .kind = PLAN_DROP,
         .reason = DROP_ECHO},
        {.name = "by the integration user (15)",
         .ev = sf_ev(SFC, "Signed Up", T(10), IUSER15),
         .map = M_ENTRIES,
         .kind = PLAN_DROP,
         .reason = DROP_ECHO},
        {.name = "by the integration user, unmapped",
         .ev = sf_ev(SFC, "Sent", T(10), IUSER),
         .map = M_NONE,
         .kind = PLAN_DROP,
         .reason = DROP_ECHO},
        {.name = "by the integration user, disabled",
         .ev = sf_ev(SFC, "Sent", T(10), IUSER),
         .map = M_DISABLED,
         .kind = PLAN_DROP,
         .reason = DROP_ECHO},
        {.name = "by the integration user, no counterpart",
         .ev = sf_ev(SFC, "Registered", T(10), IUSER),
         .map = M_ENTRIES,
         .kind = PLAN_DROP,
         .reason = DROP_ECHO},
        {.name = "by the integration user, stale",
         .ev = sf_ev(SFC, "Came", T(1), IUSER),
         .map = M_ENTRIES,
         .st = S_REG_MK,
         .kind = PLAN_DROP,
         .reason = DROP_ECHO},
        {.name = "by another user",
         .ev = sf_ev(SFC, "Signed Up", T(10), "005000000000002AAA"),
         .map = M_ENTRIES,
         .kind = PLAN_APPLY,
         .to_mkto = true,
         .mkto_member = true,
         .mkto_status = "Registered"},
        {.name = "by a user differing in case from the integration user",
         .ev = sf_ev(SFC, "Signed Up", T(10), "005000000000001aaa"),
         .map = M_ENTRIES,
         .kind = PLAN_DROP,
         .reason = DROP_ECHO}, /* same first 15: the same user */
        {.name = "by a user whose 15-char id differs in one character",
         .ev = sf_ev(SFC, "Signed Up", T(10), "005000000000O01AAA"),
         .map = M_ENTRIES,
         .kind = PLAN_APPLY,
         .to_mkto = true,
         .mkto_member = true,
         .mkto_status = "Registered"},
        /* mapped */
        {.name = "change, mapped, same label",
         .ev = sf_ev(SFC, "Sent", T(10), NULL),
         .map = M_PLAIN,
         .kind = PLAN_APPLY,
         .to_sf = false,
         .to_mkto = true,
         .mkto_member = true,
         .mkto_status = "Sent",
         .program_id = PROG,
         .campaign_id = CAMP},
        {.name = "change, mapped, entry",
         .ev = sf_ev(SFC, "Came", T(10), NULL),
         .map = M_ENTRIES,
         .st = S_REG_MK,
         .kind = PLAN_APPLY,
         .to_mkto = true,
         .mkto_member = true,
         .mkto_status = "Attended"},
        {.name = "change, no counterpart",
         .ev = sf_ev(SFC, "Attended", T(10), NULL),
         .map = M_ENTRIES,
         .kind = PLAN_DEAD,
         .msg = {PROG, CAMP, "\"Attended\""}},
        {.name = "change to Not in Program: no counterpart",
         .ev = sf_ev(SFC, NOT_IN_PROGRAM, T(10), NULL),
         .map = M_PLAIN,
         .kind = PLAN_DEAD,
         .msg = {PROG, CAMP, NOT_IN_PROGRAM}},
        /* deletion */
        {.name = "deletion",
         .ev = sf_ev(SFD, NULL, T(10), NULL),
         .map = M_ENTRIES,
         .st = S_REG_MK,
         .kind = PLAN_APPLY,
         .to_sf = false,
         .to_mkto = true,
         .mkto_member = false,
         .program_id = PROG,
         .campaign_id = CAMP},
        {.name = "deletion, first sight",
         .ev = sf_ev(SFD, NULL, T(10), NULL),
         .map = M_ENTRIES,
         .kind = PLAN_APPLY,
         .to_mkto = true,
         .mkto_member = false},
        {.name = "deletion carrying an untranslatable status",
         .ev = sf_ev(SFD, "Registered", T(10), NULL),
         .map = M_ENTRIES,
         .st = S_REG_MK,
         .kind = PLAN_APPLY,
         .to_mkto = true,
         .mkto_member = false},
    };
    RUN(cases);
}

/* Without SF_INTEGRATION_USER_ID, or without LastModifiedById, rule 1 does not apply. */
static void integration_user_unset(void **state) {
    (void)state;
    mapping m = the_map(true, true);
    event s = sf_ev(SFC, "Signed Up", T(10), IUSER);
    plan_result r;
    plan_event(&s, &m, NULL, NULL, &r);
    assert_int_equal(r.kind, PLAN_APPLY);
    plan_event(&s, &m, NULL, "", &r);
    assert_int_equal(r.kind, PLAN_APPLY);
    s.modified_by[0] = '\0';
    plan_event(&s, &m, NULL, IUSER, &r);
    assert_int_equal(r.kind, PLAN_APPLY);
    /* A 15-character configured id matches the 18-character LastModifiedById. */
    strcpy(s.modified_by, IUSER);
    plan_event(&s, &m, NULL, IUSER15, &r);
    assert_int_equal(r.kind, PLAN_DROP);
    assert_int_equal(r.reason, DROP_ECHO);
    /* A Marketo event never is a Salesforce echo, whatever modified_by says. */
    event e = mkto_ev(MSC, "Registered", T(10));
    strcpy(e.modified_by, IUSER);
    plan_event(&e, &m, NULL, IUSER, &r);
    assert_int_equal(r.kind, PLAN_APPLY);
}

/* ------------------------------------------------------------------------------------------
 * Newest wins (SPEC 8 "Ordering and conflicts"; plan.h rule 4): older than the recorded
 * state → stale; equal or newer → considered; no source time → receive time. */

static void newest_wins(void **state) {
    (void)state;
    event no_ts_old = mkto_ev(MSC, "Attended", 0);
    no_ts_old.received_ms = T(5) - 1;
    event no_ts_eq = mkto_ev(MSC, "Attended", 0);
    no_ts_eq.received_ms = T(5);
    event sf_no_ts_old = sf_ev(SFD, NULL, 0, NULL);
    sf_no_ts_old.received_ms = T(4);
    const plan_case cases[] = {
        {.name = "Marketo, older",
         .ev = mkto_ev(MSC, "Attended", T(5) - 1),
         .map = M_ENTRIES,
         .st = S_REG_MK,
         .kind = PLAN_DROP,
         .reason = DROP_STALE},
        {.name = "Marketo, equal",
         .ev = mkto_ev(MSC, "Attended", T(5)),
         .map = M_ENTRIES,
         .st = S_REG_MK,
         .kind = PLAN_APPLY,
         .to_sf = true,
         .sf_member = true,
         .sf_status = "Came"},
        {.name = "Marketo, newer",
         .ev = mkto_ev(MSC, "Attended", T(6)),
         .map = M_ENTRIES,
         .st = S_REG_MK,
         .kind = PLAN_APPLY,
         .to_sf = true,
         .sf_member = true,
         .sf_status = "Came"},
        {.name = "Marketo removal, older than a recorded member",
         .ev = mkto_ev(MRM, NULL, T(4)),
         .map = M_ENTRIES,
         .st = S_REG_SF,
         .kind = PLAN_DROP,
         .reason = DROP_STALE},
        {.name = "Marketo, older than a recorded removal",
         .ev = mkto_ev(MSC, "Attended", T(4)),
         .map = M_ENTRIES,
         .st = S_GONE_SF,
         .kind = PLAN_DROP,
         .reason = DROP_STALE},
        {.name = "Marketo, no source time, received before",
         .ev = no_ts_old,
         .map = M_ENTRIES,
         .st = S_REG_MK,
         .kind = PLAN_DROP,
         .reason = DROP_STALE},
        {.name = "Marketo, no source time, received at",
         .ev = no_ts_eq,
         .map = M_ENTRIES,
         .st = S_REG_MK,
         .kind = PLAN_APPLY,
         .to_sf = true,
         .sf_member = true,
         .sf_status = "Came"},
        {.name = "Salesforce, older",
         .ev = sf_ev(SFC, "Came", T(4), NULL),
         .map = M_ENTRIES,
         .st = S_REG_MK,
         .kind = PLAN_DROP,
         .reason = DROP_STALE},
        {.name = "Salesforce, equal",
         .ev = sf_ev(SFC, "Came", T(5), NULL),
         .map = M_ENTRIES,
         .st = S_REG_MK,
         .kind = PLAN_APPLY,
         .to_mkto = true,
         .mkto_member = true,
         .mkto_status = "Attended"},
        /* "a deletion recorded in state wins over an older update" (SPEC 10) */
        {.name = "Salesforce update older than a recorded deletion",
         .ev = sf_ev(SFC, "Came", T(4), NULL),
         .map = M_ENTRIES,
         .st = S_GONE_SF,
         .kind = PLAN_DROP,
         .reason = DROP_STALE},
        {.name = "Salesforce deletion, no source time, received before",
         .ev = sf_no_ts_old,
         .map = M_ENTRIES,
         .st = S_REG_MK,
         .kind = PLAN_DROP,
         .reason = DROP_STALE},
        {.name = "F7, older",
         .ev = mkto_ev(CHG, "Came", T(4)),
         .map = M_ENTRIES,
         .st = S_REG_MK,
         .kind = PLAN_DROP,
         .reason = DROP_STALE},
        {.name = "F7 unmapped, older",
         .ev = mkto_ev(CHG, "Sent", T(4)),
         .map = M_NONE,
         .st = S_REG_MK,
         .kind = PLAN_DROP,
         .reason = DROP_STALE},
        /* plan.h rule 3 (stale) comes before rule 4 (read the status, translate): a stale
         * event is dropped without a Marketo read and without a dead letter. */
        {.name = "stale and untranslatable: dropped as stale",
         .ev = mkto_ev(MSC, "Signed Up", T(4)),
         .map = M_ENTRIES,
         .st = S_REG_MK,
         .kind = PLAN_DROP,
         .reason = DROP_STALE},
        {.name = "stale and no status: no read",
         .ev = mkto_ev(MSC, NULL, T(4)),
         .map = M_ENTRIES,
         .st = S_REG_MK,
         .kind = PLAN_DROP,
         .reason = DROP_STALE},
        {.name = "stale removal needs no status",
         .ev = mkto_ev(MRM, NULL, T(4)),
         .map = M_ENTRIES,
         .st = S_REG_MK,
         .kind = PLAN_DROP,
         .reason = DROP_STALE},
        /* no recorded state: never stale */
        {.name = "first sight, old event",
         .ev = mkto_ev(MSC, "Attended", 1),
         .map = M_ENTRIES,
         .st = S_UNKNOWN,
         .kind = PLAN_APPLY,
         .to_sf = true,
         .sf_member = true,
         .sf_status = "Came"},
    };
    RUN(cases);
}

/* A state with known == false is not compared, whatever its other fields hold. */
static void unknown_state_is_never_stale(void **state) {
    (void)state;
    mapping m = the_map(true, true);
    member_state st = rec(true, "Came", true, "Attended", T(100), SRC_MARKETO);
    st.known = false;
    event e = mkto_ev(MSC, "Attended", T(1));
    plan_result r = plan(&e, &m, &st);
    assert_int_equal(r.kind, PLAN_APPLY);
    assert_true(r.to_sf);
    assert_string_equal(r.sf_status, "Came");
}

/* ------------------------------------------------------------------------------------------
 * Echo and duplicate (SPEC 8 "Echo suppression"; plan.h rule 5): the wanted state equals
 * the recorded state on every side → nothing is applied; a duplicate when the recorded
 * state came from the event's own side, an echo when from the other side. First sight
 * always applies. */

static void echo_and_duplicate(void **state) {
    (void)state;
    const plan_case cases[] = {
        /* Marketo program events */
        {.name = "Marketo, same as recorded from Marketo",
         .ev = mkto_ev(MSC, "Registered", T(6)),
         .map = M_ENTRIES,
         .st = S_REG_MK,
         .kind = PLAN_DROP,
         .reason = DROP_DUPLICATE},
        {.name = "Marketo webhook of our own write after a Salesforce change",
         .ev = mkto_ev(MSC, "Registered", T(6)),
         .map = M_ENTRIES,
         .st = S_REG_SF,
         .kind = PLAN_DROP,
         .reason = DROP_ECHO},
        {.name = "Marketo, same time and state",
         .ev = mkto_ev(MSC, "Registered", T(5)),
         .map = M_ENTRIES,
         .st = S_REG_MK,
         .kind = PLAN_DROP,
         .reason = DROP_DUPLICATE},
        {.name = "Marketo removal of a recorded non-member, from Marketo",
         .ev = mkto_ev(MRM, NULL, T(6)),
         .map = M_ENTRIES,
         .st = S_GONE_MK,
         .kind = PLAN_DROP,
         .reason = DROP_DUPLICATE},
        {.name = "Marketo Not in Program after our Salesforce-driven removal",
         .ev = mkto_ev(MSC, NOT_IN_PROGRAM, T(6)),
         .map = M_ENTRIES,
         .st = S_GONE_SF,
         .kind = PLAN_DROP,
         .reason = DROP_ECHO},
        {.name = "Marketo, plain map, same",
         .ev = mkto_ev(MSC, "Registered", T(6)),
         .map = M_PLAIN,
         .st = S_PLAIN_REG,
         .kind = PLAN_DROP,
         .reason = DROP_DUPLICATE},
        {.name = "Marketo, different status",
         .ev = mkto_ev(MSC, "Attended", T(6)),
         .map = M_ENTRIES,
         .st = S_REG_SF,
         .kind = PLAN_APPLY,
         .to_sf = true,
         .sf_member = true,
         .sf_status = "Came"},
        /* Salesforce events */
        {.name = "Outbound Message of our own write (no integration user)",
         .ev = sf_ev(SFC, "Signed Up", T(6), NULL),
         .map = M_ENTRIES,
         .st = S_REG_MK,
         .kind = PLAN_DROP,
         .reason = DROP_ECHO},
        {.name = "Salesforce, same as recorded from Salesforce",
         .ev = sf_ev(SFC, "Signed Up", T(6), NULL),
         .map = M_ENTRIES,
         .st = S_REG_SF,
         .kind = PLAN_DROP,
         .reason = DROP_DUPLICATE},
        {.name = "deletion the service made itself (SPEC 8)",
         .ev = sf_ev(SFD, NULL, T(6), NULL),
         .map = M_ENTRIES,
         .st = S_GONE_MK,
         .kind = PLAN_DROP,
         .reason = DROP_ECHO},
        {.name = "deletion reported twice",
         .ev = sf_ev(SFD, NULL, T(6), NULL),
         .map = M_ENTRIES,
         .st = S_GONE_SF,
         .kind = PLAN_DROP,
         .reason = DROP_DUPLICATE},
        {.name = "Salesforce, new status",
         .ev = sf_ev(SFC, "Came", T(6), NULL),
         .map = M_ENTRIES,
         .st = S_REG_MK,
         .kind = PLAN_APPLY,
         .to_mkto = true,
         .mkto_member = true,
         .mkto_status = "Attended"},
        /* Marketo side behind: the Salesforce side already is what the event says, Marketo
         * still differs → apply to Marketo only. */
        {.name = "Salesforce re-sends a status Marketo skipped",
         .ev = sf_ev(SFC, "Came", T(6), NULL),
         .map = M_ENTRIES,
         .st = S_SF_AHEAD,
         .kind = PLAN_APPLY,
         .to_mkto = true,
         .mkto_member = true,
         .mkto_status = "Attended"},
        /* F7, mapped: both sides compared; only the side that differs is written */
        {.name = "F7, both sides as recorded, from Marketo",
         .ev = mkto_ev(CHG, "Signed Up", T(6)),
         .map = M_ENTRIES,
         .st = S_REG_MK,
         .kind = PLAN_DROP,
         .reason = DROP_DUPLICATE},
        {.name = "F7, both sides as recorded, from Salesforce",
         .ev = mkto_ev(CHG, "Signed Up", T(6)),
         .map = M_ENTRIES,
         .st = S_REG_SF,
         .kind = PLAN_DROP,
         .reason = DROP_ECHO},
        {.name = "F7, only Marketo differs",
         .ev = mkto_ev(CHG, "Came", T(6)),
         .map = M_ENTRIES,
         .st = S_SF_AHEAD,
         .kind = PLAN_APPLY,
         .to_sf = false,
         .to_mkto = true,
         .mkto_member = true,
         .mkto_status = "Attended"},
        {.name = "F7 remove, both sides removed",
         .ev = mkto_ev(REM, NULL, T(6)),
         .map = M_ENTRIES,
         .st = S_GONE_SF,
         .kind = PLAN_DROP,
         .reason = DROP_ECHO},
        /* first sight always applies, even when it "equals" zeroed fields */
        {.name = "first sight, no state",
         .ev = mkto_ev(MRM, NULL, T(6)),
         .map = M_ENTRIES,
         .st = S_NONE,
         .kind = PLAN_APPLY,
         .to_sf = true,
         .sf_member = false},
        {.name = "first sight, unknown state",
         .ev = mkto_ev(MSC, NOT_IN_PROGRAM, T(6)),
         .map = M_ENTRIES,
         .st = S_UNKNOWN,
         .kind = PLAN_APPLY,
         .to_sf = true,
         .sf_member = false},
        {.name = "first sight deletion",
         .ev = sf_ev(SFD, NULL, T(6), NULL),
         .map = M_ENTRIES,
         .st = S_UNKNOWN,
         .kind = PLAN_APPLY,
         .to_mkto = true,
         .mkto_member = false},
        {.name = "first sight F7 remove, mapped",
         .ev = mkto_ev(REM, NULL, T(6)),
         .map = M_ENTRIES,
         .st = S_NONE,
         .kind = PLAN_APPLY,
         .to_sf = true,
         .sf_member = false,
         .to_mkto = true,
         .mkto_member = false},
    };
    RUN(cases);
}

/* Rule 5 with `record`: a Salesforce user moves a member forward to "Came" while the record
 * says Salesforce "Signed Up" / Marketo "Attended" (Marketo skipped an earlier backward
 * move). Nothing needs writing ("Came" maps to the Marketo status already there), but the
 * Salesforce side changed: the drop carries `record`, and `next` records Salesforce "Came",
 * Marketo "Attended", ts T(6), src Salesforce (F9 answers from this record). */
static void own_side_change_is_not_a_duplicate(void **state) {
    (void)state;
    mapping m = the_map(true, true);
    member_state st = rec(true, "Signed Up", true, "Attended", T(5), SRC_SALESFORCE);
    event s = sf_ev(SFC, "Came", T(6), NULL);
    plan_result r = plan(&s, &m, &st);
    char got[600];
    describe(got, sizeof got, &r);
    if (r.kind != PLAN_DROP || !r.record)
        fail_msg("Salesforce side changed \"Signed Up\" -> \"Came\": want a recorded drop, got %s",
                 got);
    assert_false(r.to_sf);
    assert_false(r.to_mkto);
    assert_true(r.next.sf_member);
    assert_string_equal(r.next.sf_status, "Came");
    assert_true(r.next.mkto_member);
    assert_string_equal(r.next.mkto_status, "Attended");
    assert_true(r.next.ts == T(6));
    assert_int_equal(r.next.src, SRC_SALESFORCE);
}

/* First sight with fields that happen to equal the event still applies. */
static void first_sight_with_equal_fields(void **state) {
    (void)state;
    mapping m = the_map(true, true);
    member_state st = rec(true, "Signed Up", true, "Registered", 0, SRC_MARKETO);
    st.known = false;
    event e = mkto_ev(MSC, "Registered", T(6));
    plan_result r = plan(&e, &m, &st);
    assert_int_equal(r.kind, PLAN_APPLY);
    assert_true(r.to_sf);
    event s = sf_ev(SFC, "Signed Up", T(6), NULL);
    r = plan(&s, &m, &st);
    assert_int_equal(r.kind, PLAN_APPLY);
    assert_true(r.to_mkto);
}

/* ------------------------------------------------------------------------------------------
 * The member state to record (plan.h `next`; SPEC 8: per member, newest source time; F9 reads
 * it): ts = max(recorded, event time), src = event source, both sides as wanted after the
 * event, email / lead id / CampaignMember id / person from the event when present, other
 * fields kept. */

static void next_after_marketo_event(void **state) {
    (void)state;
    mapping m = the_map(true, true);
    member_state st = rec(true, "Came", true, "Attended", T(5), SRC_SALESFORCE);
    event e = mkto_ev(MSC, "Registered", T(9));
    plan_result r = plan(&e, &m, &st);
    assert_int_equal(r.kind, PLAN_APPLY);
    const member_state *n = &r.next;
    assert_true(n->known);
    assert_true(n->ts == T(9));
    assert_int_equal(n->src, SRC_MARKETO);
    assert_true(n->sf_member);
    assert_string_equal(n->sf_status, "Signed Up");
    assert_true(n->mkto_member);
    assert_string_equal(n->mkto_status, "Registered");
    assert_string_equal(n->email, "ann.lee@example.com");
    assert_string_equal(n->mkto_lead, "123");
    /* Salesforce ids are not in a Marketo event: kept. */
    assert_string_equal(n->cm_id, st.cm_id);
    assert_string_equal(n->sf_person, st.sf_person);
    assert_true(n->updated_ms == st.updated_ms); /* plan has no clock */

    /* Without email or lead id in the event, the recorded ones stay. */
    e.email[0] = '\0';
    e.mkto_lead_id[0] = '\0';
    r = plan(&e, &m, &st);
    assert_string_equal(r.next.email, "old@example.com");
    assert_string_equal(r.next.mkto_lead, "99");

    /* Removal: both sides not a member, statuses empty. */
    event rm = mkto_ev(MSC, NOT_IN_PROGRAM, T(9));
    r = plan(&rm, &m, &st);
    assert_int_equal(r.kind, PLAN_APPLY);
    assert_false(r.next.sf_member);
    assert_string_equal(r.next.sf_status, "");
    assert_false(r.next.mkto_member);
    assert_string_equal(r.next.mkto_status, "");
    assert_true(r.next.ts == T(9));

    /* Equal time: ts stays. No state: the event's time. */
    event eq = mkto_ev(MSC, "No Show", T(5));
    r = plan(&eq, &m, &st);
    assert_true(r.next.ts == T(5));
    r = plan(&eq, &m, NULL);
    assert_true(r.next.known);
    assert_true(r.next.ts == T(5));
    assert_int_equal(r.next.src, SRC_MARKETO);
    assert_string_equal(r.next.cm_id, "");

    /* No source time: the receive time. */
    event nots = mkto_ev(MSC, "No Show", 0);
    nots.received_ms = T(7);
    r = plan(&nots, &m, &st);
    assert_true(r.next.ts == T(7));
}

static void next_after_salesforce_event(void **state) {
    (void)state;
    mapping m = the_map(true, true);
    member_state st = rec(true, "Signed Up", true, "Registered", T(5), SRC_MARKETO);
    event s = sf_ev(SFC, "Came", T(8), NULL);
    plan_result r = plan(&s, &m, &st);
    assert_int_equal(r.kind, PLAN_APPLY);
    const member_state *n = &r.next;
    assert_true(n->known);
    assert_true(n->ts == T(8));
    assert_int_equal(n->src, SRC_SALESFORCE);
    assert_true(n->sf_member);
    assert_string_equal(n->sf_status, "Came");
    assert_true(n->mkto_member);
    assert_string_equal(n->mkto_status, "Attended");
    assert_string_equal(n->cm_id, CM_ID);
    assert_string_equal(n->sf_person, LEAD_ID);
    assert_string_equal(n->email, "ann.lee@example.com");
    assert_string_equal(n->mkto_lead, "99"); /* not in a Salesforce event: kept */

    /* A Contact wins over a Lead (SPEC 8 "People"). */
    strcpy(s.sf_contact_id, CONTACT_ID);
    r = plan(&s, &m, &st);
    assert_string_equal(r.next.sf_person, CONTACT_ID);

    /* A deletion (no person, no email): those stay; both sides removed. */
    event d = sf_ev(SFD, NULL, T(9), NULL);
    r = plan(&d, &m, &st);
    assert_int_equal(r.kind, PLAN_APPLY);
    assert_false(r.next.sf_member);
    assert_string_equal(r.next.sf_status, "");
    assert_false(r.next.mkto_member);
    assert_string_equal(r.next.mkto_status, "");
    assert_string_equal(r.next.sf_person, st.sf_person);
    assert_string_equal(r.next.email, st.email);
    assert_string_equal(r.next.cm_id, CM_ID);
    assert_true(r.next.ts == T(9));
    assert_int_equal(r.next.src, SRC_SALESFORCE);
}

/* A remove and re-add: the deleted-records poll reports the deletion of the CampaignMember
 * that the re-add replaced; its deletedDate may be later than the re-add's own time (our
 * delete ran after the re-add was made in Marketo), but it ended the older membership. */
static void deletion_of_a_replaced_member(void **state) {
    (void)state;
    mapping m = the_map(true, true);
    member_state st = rec(true, "Signed Up", true, "Registered", T(5), SRC_MARKETO);
    event d = sf_ev(SFD, NULL, T(9), NULL);
    strcpy(d.member_id, "00v5g000000GoneAAA");
    plan_result r = plan(&d, &m, &st);
    assert_int_equal(r.kind, PLAN_DROP);
    assert_int_equal(r.reason, DROP_STALE);
    /* The recorded member itself (15-character form too) is removed as before. */
    strcpy(d.member_id, CM_ID);
    d.member_id[15] = '\0';
    r = plan(&d, &m, &st);
    assert_int_equal(r.kind, PLAN_APPLY);
    assert_false(r.next.mkto_member);
    /* Nothing recorded about the CampaignMember: newest time decides, as before. */
    st.cm_id[0] = '\0';
    strcpy(d.member_id, "00v5g000000GoneAAA");
    r = plan(&d, &m, &st);
    assert_int_equal(r.kind, PLAN_APPLY);
}

static void next_after_flow_action(void **state) {
    (void)state;
    mapping m = the_map(true, true);
    member_state st = rec(true, "Signed Up", true, "Registered", T(5), SRC_SALESFORCE);
    event f = mkto_ev(CHG, "Came", T(8));
    plan_result r = plan(&f, &m, &st);
    assert_int_equal(r.kind, PLAN_APPLY);
    assert_true(r.next.ts == T(8));
    assert_int_equal(r.next.src, SRC_MARKETO);
    assert_true(r.next.sf_member);
    assert_string_equal(r.next.sf_status, "Came");
    assert_true(r.next.mkto_member);
    assert_string_equal(r.next.mkto_status, "Attended");
    assert_string_equal(r.next.cm_id, st.cm_id);
    assert_string_equal(r.next.sf_person, st.sf_person);
    assert_string_equal(r.next.mkto_lead, "123");
}

/* An F7 action on an UNMAPPED campaign writes only to Salesforce (to_mkto false) and says
 * nothing about program membership: the recorded Marketo side is kept ("unchanged fields
 * kept"). Found as a bug: the Marketo side used to be cleared for any Marketo event. */
static void next_after_unmapped_flow_action_keeps_marketo_side(void **state) {
    (void)state;
    member_state st = rec(true, "Sent", true, "Registered", T(5), SRC_SALESFORCE);
    event f = mkto_ev(CHG, "Responded", T(8));
    plan_result r = plan(&f, NULL, &st);
    assert_int_equal(r.kind, PLAN_APPLY);
    assert_true(r.to_sf);
    assert_false(r.to_mkto);
    assert_true(r.next.sf_member);
    assert_string_equal(r.next.sf_status, "Responded");
    assert_true(r.next.ts == T(8));
    if (!r.next.mkto_member || strcmp(r.next.mkto_status, "Registered") != 0)
        fail_msg("unmapped F7 rewrote the recorded Marketo side to member=%d status=\"%s\" "
                 "(want member=1 \"Registered\", untouched)",
                 r.next.mkto_member, r.next.mkto_status);
}

/* Drops and parks say nothing to record about the mapped pair. */
static void no_plan_fields_on_non_apply(void **state) {
    (void)state;
    mapping m = the_map(true, true);
    member_state st = rec(true, "Signed Up", true, "Registered", T(5), SRC_MARKETO);
    event e = mkto_ev(MSC, "Attended", T(1));
    plan_result r = plan(&e, &m, &st);
    assert_int_equal(r.kind, PLAN_DROP);
    assert_int_equal(r.reason, DROP_STALE);
    assert_false(r.to_sf);
    assert_false(r.to_mkto);
    assert_false(r.next.known);
    event u = mkto_ev(MSC, "Attended", T(9));
    r = plan(&u, NULL, &st);
    assert_int_equal(r.kind, PLAN_DROP);
    assert_false(r.to_sf);
    assert_false(r.to_mkto);
    assert_false(r.next.known);
    assert_string_equal(plan_drop_reason_name(DROP_DUPLICATE), "duplicate");
    assert_string_equal(plan_drop_reason_name(DROP_ECHO), "echo");
    assert_string_equal(plan_drop_reason_name(DROP_STALE), "stale");
    assert_string_equal(plan_drop_reason_name(DROP_UNMAPPED), "unmapped");
    assert_string_equal(plan_drop_reason_name(DROP_NONE), "none");
}

/* ------------------------------------------------------------------------------------------
 * Convergence (SPEC 2 "Applying the same event twice leaves the same end state", SPEC 8
 * "Duplicates and reordering on delivery leave the same end state as in-order delivery"):
 * every permutation of a set of events about one member, each also delivered twice, ends in
 * the state in-order delivery gives.
 *
 * The worker is simulated: the state starts unknown; each event is planned against the
 * current state; on PLAN_APPLY (every write succeeds) the state becomes out.next. In the
 * "recording drops" variant the worker also records out.next of a DROP_DUPLICATE/DROP_ECHO
 * (the newer time of an event that changed nothing). Dead letters and parks change nothing;
 * NEED_STATUS does not occur in these sets. */

/* Lexicographic next permutation of a[0..n). */
static bool next_perm(int *a, int n) {
    int i = n - 2;
    while (i >= 0 && a[i] >= a[i + 1])
        i--;
    if (i < 0) return false;
    int j = n - 1;
    while (a[j] <= a[i])
        j--;
    int t = a[i];
    a[i] = a[j];
    a[j] = t;
    for (int l = i + 1, r = n - 1; l < r; l++, r--) {
        t = a[l];
        a[l] = a[r];
        a[r] = t;
    }
    return true;
}

typedef struct {
    const char *name;
    event ev;
} named_event;

static void deliver(const mapping *m, member_state *st, const event *e, bool record_drops,
                    const char *name) {
    plan_result r;
    plan_event(e, m, st, IUSER, &r);
    switch (r.kind) {
    case PLAN_APPLY: *st = r.next; break;
    case PLAN_DROP:
        /* The worker records `next` of a drop that asks for it (plan.h, rule 5). */
        if (record_drops && r.record) *st = r.next;
        break;
    case PLAN_NEED_STATUS: fail_msg("%s: NEED_STATUS in a convergence set", name); break;
    case PLAN_DEAD:
    case PLAN_PARK: break;
    }
}

static bool same_end(const member_state *a, const member_state *b) {
    return a->known == b->known && a->sf_member == b->sf_member &&
           strcmp(a->sf_status, b->sf_status) == 0 && a->mkto_member == b->mkto_member &&
           strcmp(a->mkto_status, b->mkto_status) == 0 && a->ts == b->ts;
}

static void show(char *buf, size_t n, const member_state *s) {
    snprintf(buf, n, "{sf=%d \"%s\", mkto=%d \"%s\", ts=T0%+llds}", s->sf_member, s->sf_status,
             s->mkto_member, s->mkto_status, (long long)((s->ts - T0) / 1000));
}

/* How a permutation is delivered. */
typedef enum { D_ONCE, D_EACH_TWICE, D_ALL_TWICE, D_MODES } delivery;

static member_state run_order(const mapping *m, const named_event *evs, const int *order, int n,
                              delivery how, bool record_drops) {
    member_state st;
    memset(&st, 0, sizeof st);
    for (int pass = 0; pass < (how == D_ALL_TWICE ? 2 : 1); pass++)
        for (int i = 0; i < n; i++) {
            const named_event *e = &evs[order[i]];
            deliver(m, &st, &e->ev, record_drops, e->name);
            if (how == D_EACH_TWICE) deliver(m, &st, &e->ev, record_drops, e->name);
        }
    return st;
}

/* evs must be listed in source-time order (that is the in-order delivery). want: the end
 * state in-order delivery must reach. */
static void check_convergence(const mapping *m, const named_event *evs, int n,
                              const member_state *want, bool record_drops) {
    int order[8];
    assert_true(n <= 8);
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int i = 1; i < n; i++)
        assert_true(event_time(&evs[i - 1].ev) < event_time(&evs[i].ev));
    member_state ref = run_order(m, evs, order, n, D_ONCE, record_drops);
    char a[400], b[400];
    if (!same_end(&ref, want)) {
        show(a, sizeof a, &ref);
        show(b, sizeof b, want);
        fail_msg("in-order delivery ends in %s, want %s", a, b);
    }
    int perms = 0;
    do {
        for (int how = D_ONCE; how < D_MODES; how++) {
            member_state got = run_order(m, evs, order, n, (delivery)how, record_drops);
            if (!same_end(&got, &ref)) {
                char seq[400];
                size_t k = 0;
                for (int i = 0; i < n; i++)
                    k += (size_t)snprintf(seq + k, sizeof seq - k, "%s%s", i ? ", " : "",
                                          evs[order[i]].name);
                show(a, sizeof a, &got);
                show(b, sizeof b, &ref);
                fail_msg("delivery order [%s]%s ends in %s; in order: %s", seq,
                         how == D_EACH_TWICE  ? " (each twice)"
                         : how == D_ALL_TWICE ? " (all, then all again)"
                                              : "",
                         a, b);
            }
        }
        perms++;
    } while (next_perm(order, n));
    /* Re-delivering any event to the end state applies nothing and changes nothing. */
    for (int i = 0; i < n; i++) {
        plan_result r;
        plan_event(&evs[i].ev, m, &ref, IUSER, &r);
        if (r.kind == PLAN_APPLY) {
            describe(a, sizeof a, &r);
            fail_msg("re-delivered %s applied again: %s", evs[i].name, a);
        }
    }
    int fact = 1;
    for (int i = 2; i <= n; i++)
        fact *= i;
    assert_int_equal(perms, fact);
}

static member_state end_state(bool sf_member, const char *sf_status, bool mk_member,
                              const char *mk_status, int64_t ts) {
    member_state s;
    memset(&s, 0, sizeof s);
    s.known = true;
    s.sf_member = sf_member;
    strcpy(s.sf_status, sf_status);
    s.mkto_member = mk_member;
    strcpy(s.mkto_status, mk_status);
    s.ts = ts;
    return s;
}

static named_event nev(const char *name, event e) {
    named_event n = {name, e};
    return n;
}

/* Five Marketo program events, all different states, one removal, one without source time. */
static void convergence_marketo(void **state) {
    (void)state;
    mapping m = the_map(true, true);
    event late = mkto_ev(MSC, "No Show", 0);
    late.received_ms = T(5);
    const named_event evs[] = {
        nev("Invited@1", mkto_ev(MSC, "Invited", T(1))),
        nev("Registered@2", mkto_ev(MSC, "Registered", T(2))),
        nev("NotInProgram@3", mkto_ev(MSC, NOT_IN_PROGRAM, T(3))),
        nev("Attended@4", mkto_ev(MSC, "Attended", T(4))),
        nev("NoShow@rx5", late),
    };
    member_state want = end_state(true, "No Show", true, "No Show", T(5));
    check_convergence(&m, evs, 5, &want, false);
    /* Ending in the removal. */
    const named_event evs2[] = {
        nev("Registered@1", mkto_ev(MSC, "Registered", T(1))),
        nev("Attended@2", mkto_ev(MSC, "Attended", T(2))),
        nev("NoShow@3", mkto_ev(MSC, "No Show", T(3))),
        nev("removed@4", mkto_ev(MRM, NULL, T(4))),
    };
    member_state want2 = end_state(false, "", false, "", T(4));
    check_convergence(&m, evs2, 4, &want2, false);
}

/* Five Salesforce events, all different states, one deletion, one without source time, one
 * dead letter (no Marketo counterpart: skipped whatever the order). */
static void convergence_salesforce(void **state) {
    (void)state;
    mapping m = the_map(true, true);
    event late = sf_ev(SFC, "Responded", 0, NULL);
    late.received_ms = T(6);
    const named_event evs[] = {
        nev("Sent@1", sf_ev(SFC, "Sent", T(1), NULL)),
        nev("SignedUp@2", sf_ev(SFC, "Signed Up", T(2), NULL)),
        nev("deleted@3", sf_ev(SFD, NULL, T(3), NULL)),
        nev("Came@4", sf_ev(SFC, "Came", T(4), NULL)),
        nev("Attended(dead)@5", sf_ev(SFC, "Attended", T(5), NULL)),
        nev("Responded@rx6", late),
    };
    member_state want = end_state(true, "Responded", true, "Responded", T(6));
    check_convergence(&m, evs, 6, &want, false);
    const named_event evs2[] = {
        nev("SignedUp@1", sf_ev(SFC, "Signed Up", T(1), NULL)),
        nev("Came@2", sf_ev(SFC, "Came", T(2), NULL)),
        nev("Sent@3", sf_ev(SFC, "Sent", T(3), NULL)),
        nev("deleted@4", sf_ev(SFD, NULL, T(4), NULL)),
    };
    member_state want2 = end_state(false, "", false, "", T(4));
    check_convergence(&m, evs2, 4, &want2, false);
}

/* Both sources and an F7 action about the same member, all different states; our own
 * Salesforce writes (integration user) in between are echoes whatever the order. */
static void convergence_mixed_sources(void **state) {
    (void)state;
    mapping m = the_map(true, true);
    const named_event evs[] = {
        nev("mkto Registered@1", mkto_ev(MSC, "Registered", T(1))),
        nev("sf Came@2", sf_ev(SFC, "Came", T(2), NULL)),
        nev("own write SignedUp@3", sf_ev(SFC, "Signed Up", T(3), IUSER)),
        nev("mkto NotInProgram@4", mkto_ev(MSC, NOT_IN_PROGRAM, T(4))),
        nev("sf Responded@5", sf_ev(SFC, "Responded", T(5), NULL)),
        nev("F7 Sent@6", mkto_ev(CHG, "Sent", T(6))),
    };
    member_state want = end_state(true, "Sent", true, "Sent", T(6));
    check_convergence(&m, evs, 6, &want, false);
}

/* A member removed and then re-added with the status they had before (Registered →
 * Attended → removed → Registered), the most common real sequence.
 *
 * Found as a bug: recording `next` only for PLAN_APPLY, delivery order
 * [Registered@1, Registered@4, Attended@2, removed@3] ended removed at T0+3 instead of
 * Registered at T0+4, because the newer duplicate's time was never recorded. plan.h now
 * requires recording `next` of a drop with `record` set (rule 5). */
static const named_event *readd_marketo(mapping *m, member_state *want) {
    static named_event evs[4];
    *m = the_map(true, true);
    evs[0] = nev("Registered@1", mkto_ev(MSC, "Registered", T(1)));
    evs[1] = nev("Attended@2", mkto_ev(MSC, "Attended", T(2)));
    evs[2] = nev("removed@3", mkto_ev(MRM, NULL, T(3)));
    evs[3] = nev("Registered@4", mkto_ev(MSC, "Registered", T(4)));
    *want = end_state(true, "Signed Up", true, "Registered", T(4));
    return evs;
}

static const named_event *readd_salesforce(mapping *m, member_state *want) {
    static named_event evs[4];
    *m = the_map(true, true);
    evs[0] = nev("SignedUp@1", sf_ev(SFC, "Signed Up", T(1), NULL));
    evs[1] = nev("Came@2", sf_ev(SFC, "Came", T(2), NULL));
    evs[2] = nev("deleted@3", sf_ev(SFD, NULL, T(3), NULL));
    evs[3] = nev("SignedUp@4", sf_ev(SFC, "Signed Up", T(4), NULL));
    *want = end_state(true, "Signed Up", true, "Registered", T(4));
    return evs;
}

/* The re-add sets converge because the worker records `next` of a drop with `record`
 * (plan.h rule 5); without it an older event delivered after a newer duplicate looks new. */
static void convergence_readd_recording_drops(void **state) {
    (void)state;
    mapping m;
    member_state want;
    const named_event *evs = readd_marketo(&m, &want);
    check_convergence(&m, evs, 4, &want, true);
    evs = readd_salesforce(&m, &want);
    check_convergence(&m, evs, 4, &want, true);
    /* A Marketo event repeating the state at a later time. */
    const named_event evs3[] = {
        nev("Registered@1", mkto_ev(MSC, "Registered", T(1))),
        nev("sf SignedUp@2", sf_ev(SFC, "Signed Up", T(2), NULL)),
        nev("deleted@3", sf_ev(SFD, NULL, T(3), NULL)),
        nev("Registered@4", mkto_ev(MSC, "Registered", T(4))),
        nev("F7 SignedUp@5", mkto_ev(ADD, "Signed Up", T(5))),
    };
    member_state want3 = end_state(true, "Signed Up", true, "Registered", T(5));
    check_convergence(&m, evs3, 5, &want3, true);
}

/* Rule 4b: an older Salesforce change (t2) was written to Marketo after a newer Marketo
 * removal (t3) happened there; when the removal's webhook arrives, the removal is put back
 * in Marketo too (newest wins in both CRMs), not only applied to Salesforce. */
static void newer_change_overwritten_by_a_late_write_is_reasserted(void **state) {
    (void)state;
    mapping m = the_map(true, true);
    member_state st = rec(true, "Attended", true, "Attended", T(2), SRC_SALESFORCE);
    st.mkto_written_ms = T(4); /* our write of the t2 change landed at t4 */
    event rm = mkto_ev(MRM, NULL, T(3));
    plan_result r = plan(&rm, &m, &st);
    assert_int_equal(r.kind, PLAN_APPLY);
    assert_true(r.to_sf && !r.sf_member);
    assert_true(r.to_mkto && !r.mkto_member);
    /* A write of ours in the removal's own millisecond may have landed after it too (chaos:
     * both at 20:14:37.583, and the member ended "Attended" in Marketo). */
    st.mkto_written_ms = T(3);
    r = plan(&rm, &m, &st);
    assert_int_equal(r.kind, PLAN_APPLY);
    assert_true(r.to_sf && !r.sf_member);
    assert_true(r.to_mkto && !r.mkto_member);
    /* Without a later write of ours, the Marketo side is left as the event says. */
    st.mkto_written_ms = T(1);
    r = plan(&rm, &m, &st);
    assert_int_equal(r.kind, PLAN_APPLY);
    assert_true(r.to_sf);
    assert_false(r.to_mkto);
    /* The same on the Salesforce side for a Salesforce event. */
    member_state s2 = rec(true, "Came", true, "Attended", T(2), SRC_MARKETO);
    s2.sf_written_ms = T(4);
    event sf = sf_ev(SFC, "Signed Up", T(3), NULL);
    r = plan(&sf, &m, &s2);
    assert_int_equal(r.kind, PLAN_APPLY);
    assert_true(r.to_sf && r.sf_member);
    assert_string_equal(r.sf_status, "Signed Up");
    assert_true(r.to_mkto);
}

/* Rule 4b with a write of unknown outcome: a pending mark later than the event means a
 * write of ours may have landed on the event's own side after it, unrecorded, so the record
 * says nothing about that side: the event is put back there even when the record already
 * matches it. */
static void event_is_reasserted_over_a_write_of_unknown_outcome(void **state) {
    (void)state;
    mapping m = the_map(true, true);
    /* Recorded: not a member in Marketo; a re-assert of an older "Registered" was in flight
     * at t4 when its worker died. */
    member_state st = rec(true, "Invited", false, "", T(2), SRC_SALESFORCE);
    st.mkto_written_ms = T(1);
    st.mkto_pending_ms = T(4);
    event rm = mkto_ev(MRM, NULL, T(3));
    plan_result r = plan(&rm, &m, &st);
    assert_int_equal(r.kind, PLAN_APPLY);
    assert_true(r.to_mkto && !r.mkto_member);
    /* The same for a Salesforce event and a pending Salesforce write. */
    member_state s2 = rec(true, "Signed Up", true, "Attended", T(2), SRC_MARKETO);
    s2.sf_pending_ms = T(4);
    event sf = sf_ev(SFC, "Signed Up", T(3), NULL);
    r = plan(&sf, &m, &s2);
    assert_int_equal(r.kind, PLAN_APPLY);
    assert_true(r.to_sf && r.sf_member);
    assert_string_equal(r.sf_status, "Signed Up");
    /* A pending write started in the event's own millisecond may have landed after it. */
    s2.sf_pending_ms = T(3);
    r = plan(&sf, &m, &s2);
    assert_int_equal(r.kind, PLAN_APPLY);
    assert_true(r.to_sf && r.sf_member);
    /* A pending mark older than the event says nothing about it: Salesforce, which the
     * record says already holds the event's status, is not written. */
    s2.sf_pending_ms = T(1);
    r = plan(&sf, &m, &s2);
    assert_false(r.kind == PLAN_APPLY && r.to_sf);
}

/* A save in Salesforce after the event, not by us, supersedes it: its Outbound Message is on
 * its way with the newer change (chaos: the user's "Attended" overwritten by our older
 * "Registered" and then sent back as ours). */
static void salesforce_save_after_the_event_supersedes_it(void **state) {
    (void)state;
    member_state st = rec(true, "Invited", true, "Invited", T(1), SRC_MARKETO);
    st.sf_written_ms = T(1);
    event ev = mkto_ev(MSC, "Registered", T(3));
    /* With an integration user: who saved decides (15 or 18 characters). */
    assert_true(plan_superseded_by_salesforce(&ev, &st, T(4), SOMEONE, IUSER));
    assert_false(plan_superseded_by_salesforce(&ev, &st, T(4), IUSER, IUSER));
    assert_false(plan_superseded_by_salesforce(&ev, &st, T(4), IUSER15, IUSER));
    assert_true(plan_superseded_by_salesforce(&ev, &st, T(4), NULL, IUSER));
    /* A save at or before the event's time is older: newest wins, ties to the event. */
    assert_false(plan_superseded_by_salesforce(&ev, &st, T(3), SOMEONE, IUSER));
    assert_false(plan_superseded_by_salesforce(&ev, &st, T(2), SOMEONE, IUSER));
    /* Without one: a save up to our last write, recorded or pending, may be ours. */
    assert_true(plan_superseded_by_salesforce(&ev, &st, T(4), SOMEONE, NULL));
    assert_true(plan_superseded_by_salesforce(&ev, &st, T(4), SOMEONE, ""));
    st.sf_written_ms = T(5);
    assert_false(plan_superseded_by_salesforce(&ev, &st, T(4), SOMEONE, ""));
    st.sf_written_ms = T(1);
    st.sf_pending_ms = T(4);
    assert_false(plan_superseded_by_salesforce(&ev, &st, T(4), SOMEONE, ""));
    assert_true(plan_superseded_by_salesforce(&ev, &st, T(4) + 1, SOMEONE, ""));
}

/* ------------------------------------------------------------------------------------------
 * The round trip's marked test person (plan.h, plan_roundtrip_person): `campaign-sync check
 * --roundtrip` saves its campaign member with the service's own Salesforce credentials, so
 * rule 1 must not drop that change; the echo of our own write is still dropped (rule 5). */

#define TESTER "campaign-sync-roundtrip+1795946400@example.com"

static void roundtrip_person_is_narrow(void **state) {
    (void)state;
    assert_true(plan_roundtrip_person(TESTER));
    assert_true(plan_roundtrip_person("Campaign-Sync-Roundtrip+7@EXAMPLE.com"));
    const char *others[] = {
        NULL,
        "",
        "campaign-sync-roundtrip+@example.com",           /* no digits */
        "campaign-sync-roundtrip@example.com",            /* no '+' */
        "campaign-sync-roundtrip+12a@example.com",        /* not only digits */
        "campaign-sync-roundtrip+1@example.org",          /* another domain */
        "campaign-sync-roundtrip+1@example.com.evil.org", /* example.com only as a prefix */
        "campaign-sync-roundtrip+1@sub.example.com",
        "x.campaign-sync-roundtrip+1@example.com", /* the prefix must start the address */
        "campaign-sync-roundtrip+123456789012345678901@example.com", /* over 20 digits */
        "ann.lee@example.com",
    };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        if (plan_roundtrip_person(others[i])) fail_msg("taken for the test person: %s", others[i]);
}

/* What the service recorded after applying the round trip's Marketo change ("Registered")
 * to Salesforce ("Signed Up") at T(2). */
static member_state after_marketo_step(void) {
    member_state st = rec(true, "Signed Up", true, "Registered", T(1), SRC_MARKETO);
    strcpy(st.email, TESTER);
    st.sf_written_ms = T(2);
    return st;
}

static void roundtrip_person_change_by_integration_user_applies(void **state) {
    (void)state;
    mapping m = the_map(true, true);
    member_state st = after_marketo_step();
    /* The tool moves the member on in Salesforce, saved as the integration user. */
    event e = sf_ev(SFC, "Came", T(5), IUSER);
    strcpy(e.email, TESTER);
    plan_result r = plan(&e, &m, &st);
    assert_int_equal(r.kind, PLAN_APPLY);
    assert_true(r.to_mkto);
    assert_false(r.to_sf);
    assert_string_equal(r.mkto_status, "Attended");
    /* Anyone else's member saved by the integration user stays our own write. */
    strcpy(e.email, "ann.lee@example.com");
    r = plan(&e, &m, &st);
    assert_int_equal(r.kind, PLAN_DROP);
    assert_int_equal(r.reason, DROP_ECHO);
    assert_false(r.record);
}

static void roundtrip_person_echoes_are_still_dropped(void **state) {
    (void)state;
    mapping m = the_map(true, true);
    member_state st = after_marketo_step();
    /* The Outbound Message of our own write of "Signed Up" (LastModifiedDate T(2)). */
    event echo = sf_ev(SFC, "Signed Up", T(2), IUSER);
    strcpy(echo.email, TESTER);
    plan_result r = plan(&echo, &m, &st);
    assert_int_equal(r.kind, PLAN_DROP);
    assert_int_equal(r.reason, DROP_ECHO);
    assert_true(r.record);
    assert_int_equal(r.next.src, SRC_MARKETO);
    /* After the tool's change reached Marketo ("Attended", written at T(6)), Marketo's
     * webhook of our write is an echo too. */
    member_state after = rec(true, "Came", true, "Attended", T(5), SRC_SALESFORCE);
    strcpy(after.email, TESTER);
    after.sf_written_ms = T(2);
    after.mkto_written_ms = T(6);
    event mk = mkto_ev(MSC, "Attended", T(6));
    strcpy(mk.email, TESTER);
    r = plan(&mk, &m, &after);
    assert_int_equal(r.kind, PLAN_DROP);
    assert_int_equal(r.reason, DROP_ECHO);
}

static void roundtrip_person_save_by_integration_user_supersedes(void **state) {
    (void)state;
    member_state st = after_marketo_step();
    event ev = mkto_ev(MSC, "Attended", T(3));
    strcpy(ev.email, TESTER);
    /* Saved by the integration user after the event and after our last write: the tool. */
    assert_true(plan_superseded_by_salesforce(&ev, &st, T(4), IUSER, IUSER));
    /* Up to our own last write it may be ours. */
    assert_false(plan_superseded_by_salesforce(&ev, &st, T(2), IUSER, IUSER));
    strcpy(ev.email, "ann.lee@example.com");
    assert_false(plan_superseded_by_salesforce(&ev, &st, T(4), IUSER, IUSER));
}

/* ------------------------------------------------------------------------------------------
 * A worker's turn: what a CRM's answer means, who a person is, when to wait, what to record. */

static void failures_mean_retry_dead_or_a_wait(void **state) {
    (void)state;
    assert_int_equal(plan_after_failure(CRM_RETRY), IT_RETRY);
    assert_int_equal(plan_after_failure(CRM_REFUSED), IT_DEAD);
    assert_int_equal(plan_after_failure(CRM_NO_PERMIT), IT_DEFER); /* no attempt spent */
    assert_int_equal(plan_after_failure(CRM_SPENT), IT_QUOTA);     /* parked, no attempt */
}

static void salesforce_records_by_write(void **state) {
    (void)state;
    const plan_sf_write all[] = {PLAN_SF_CREATE_MEMBER, PLAN_SF_UPDATE_MEMBER,
                                 PLAN_SF_DELETE_MEMBER, PLAN_SF_CREATE_LEAD};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(plan_after_sf_record(SF_REC_OK, CRM_REFUSED, all[i]), IT_PENDING);
        assert_int_equal(plan_after_sf_record(SF_REC_FAILED, CRM_RETRY, all[i]), IT_RETRY);
        assert_int_equal(plan_after_sf_record(SF_REC_FAILED, CRM_REFUSED, all[i]), IT_DEAD);
        assert_int_equal(plan_after_sf_record(SF_REC_FAILED, CRM_SPENT, all[i]), IT_QUOTA);
        assert_int_equal(plan_after_sf_record(SF_REC_BAD_STATUS, CRM_REFUSED, all[i]), IT_DEAD);
    }
    /* A member created meanwhile: looked up and updated next round. */
    assert_int_equal(plan_after_sf_record(SF_REC_EXISTS, CRM_REFUSED, PLAN_SF_CREATE_MEMBER),
                     IT_DEFER);
    assert_int_equal(plan_after_sf_record(SF_REC_EXISTS, CRM_REFUSED, PLAN_SF_UPDATE_MEMBER),
                     IT_DEAD);
    /* Already gone is what a removal wants, and nothing else. */
    assert_int_equal(plan_after_sf_record(SF_REC_GONE, CRM_REFUSED, PLAN_SF_DELETE_MEMBER),
                     IT_PENDING);
    assert_int_equal(plan_after_sf_record(SF_REC_GONE, CRM_REFUSED, PLAN_SF_UPDATE_MEMBER),
                     IT_DEAD);
    /* A duplicate rule's person is the person of a Lead creation. */
    assert_int_equal(
        plan_after_sf_record(SF_REC_DUPLICATE_PERSON, CRM_REFUSED, PLAN_SF_CREATE_LEAD),
        IT_PENDING);
    assert_int_equal(
        plan_after_sf_record(SF_REC_DUPLICATE_PERSON, CRM_REFUSED, PLAN_SF_CREATE_MEMBER), IT_DEAD);
}

static void marketo_records_and_the_1037_skip(void **state) {
    (void)state;
    assert_int_equal(plan_after_mk_record(MK_REC_OK, CRM_REFUSED, false), IT_PENDING);
    assert_int_equal(plan_after_mk_record(MK_REC_NOT_MEMBER, CRM_REFUSED, false), IT_PENDING);
    assert_int_equal(plan_after_mk_record(MK_REC_AT_OR_PAST, CRM_REFUSED, false), IT_PENDING);
    assert_int_equal(plan_after_mk_record(MK_REC_FAILED, CRM_RETRY, false), IT_RETRY);
    assert_int_equal(plan_after_mk_record(MK_REC_FAILED, CRM_REFUSED, false), IT_DEAD);
    assert_int_equal(plan_after_mk_record(MK_REC_FAILED, CRM_SPENT, false), IT_DEAD);
    /* A lead's creation: every refusal is permanent. */
    assert_int_equal(plan_after_mk_record(MK_REC_OK, CRM_REFUSED, true), IT_PENDING);
    assert_int_equal(plan_after_mk_record(MK_REC_FAILED, CRM_RETRY, true), IT_DEAD);
    /* A skip is a success when the record shows the wanted status; else Marketo is read. */
    plan_result p;
    memset(&p, 0, sizeof p);
    strcpy(p.mkto_status, "Attended");
    member_state st = {.known = true, .mkto_member = true};
    strcpy(st.mkto_status, "Attended");
    assert_false(plan_skip_needs_read(&st, &p));
    strcpy(st.mkto_status, "Registered");
    assert_true(plan_skip_needs_read(&st, &p));
    st.known = false;
    strcpy(st.mkto_status, "Attended");
    assert_true(plan_skip_needs_read(&st, &p));
    /* As read: at the wanted status, or past it (backward), or no member at all. */
    assert_false(plan_backward("Attended", "Attended"));
    assert_true(plan_backward("Attended", "Registered"));
    assert_true(plan_backward(NULL, "Registered"));
    assert_string_equal(plan_drop_reason_name(DROP_BACKWARD), "backward_progression");
}

static void recorded_after_a_write_and_a_backward_move(void **state) {
    (void)state;
    plan_result p;
    memset(&p, 0, sizeof p);
    p.kind = PLAN_APPLY;
    p.to_sf = p.to_mkto = true;
    p.next.known = true;
    p.next.mkto_member = true;
    strcpy(p.next.mkto_status, "Registered");
    member_state st = {.known = true, .mkto_member = true};
    strcpy(st.mkto_status, "Old");
    plan_applied a = {LEAD_ID, CM_ID, "42", false, ""};
    member_state n;
    plan_record_applied(&p, &st, &a, T(5), &n);
    assert_string_equal(n.sf_person, LEAD_ID);
    assert_string_equal(n.cm_id, CM_ID);
    assert_string_equal(n.mkto_lead, "42");
    assert_string_equal(n.mkto_status, "Registered");
    assert_true(n.sf_written_ms == T(5) && n.mkto_written_ms == T(5) && n.updated_ms == T(5));
    /* Marketo kept a higher status: the one it answered with is recorded. */
    a.backward = true;
    a.mkto_now = "Attended";
    plan_record_applied(&p, &st, &a, T(6), &n);
    assert_true(n.mkto_member);
    assert_string_equal(n.mkto_status, "Attended");
    assert_true(n.mkto_written_ms == T(6)); /* an earlier try may have landed */
    /* Not read: the record's own Marketo side stays. */
    a.mkto_now = "";
    plan_record_applied(&p, &st, &a, T(7), &n);
    assert_string_equal(n.mkto_status, "Old");
    /* A removal toward Salesforce records no CampaignMember. */
    a.cm_id = "";
    p.to_mkto = false;
    plan_record_applied(&p, &st, &a, T(8), &n);
    assert_string_equal(n.cm_id, "");
    assert_true(n.mkto_written_ms == 0);
}

static void waits_for_a_write_of_ours_still_landing(void **state) {
    (void)state;
    event e = mkto_ev(EV_MEMBER_STATUS_CHANGED, "Registered", T(10));
    plan_result p;
    memset(&p, 0, sizeof p);
    p.kind = PLAN_APPLY;
    p.to_mkto = true;
    member_state st = {.mkto_pending_ms = T(30)};
    assert_true(plan_wait_for_own_write(&e, &st, &p, T(20)) == T(30) + PLAN_DEFER_MS);
    assert_true(plan_wait_for_own_write(&e, &st, &p, T(31)) == 0); /* it has landed */
    p.to_mkto = false; /* the event's own side is not written: nothing to wait for */
    assert_true(plan_wait_for_own_write(&e, &st, &p, T(20)) == 0);
    p.to_mkto = true;
    e = mkto_ev(EV_MEMBER_STATUS_CHANGED, "Registered", T(40)); /* newer than the write */
    assert_true(plan_wait_for_own_write(&e, &st, &p, T(20)) == 0);
}

static void which_lead_is_the_person(void **state) {
    (void)state;
    mk_lead l[4];
    memset(l, 0, sizeof l);
    strcpy(l[0].id, "900");
    l[0].email = "Ann@X.com";
    l[0].sfdc_contact_id = "0035g000000OthrAAA"; /* linked to someone else */
    strcpy(l[1].id, "1000");
    l[1].email = "ann@x.com";
    strcpy(l[2].id, "950");
    l[2].email = "ann@x.com";
    l[2].sfdc_lead_id = LEAD_ID; /* linked to this person */
    strcpy(l[3].id, "10");
    l[3].email = "bob@x.com";
    bool sure = false;
    /* Linked to this person: it, before an older free one. */
    assert_int_equal(plan_pick_lead_by_email(l, 4, "ann@x.com", LEAD_ID, &sure), 2);
    assert_true(sure);
    strcpy(l[2].id, "1100");
    assert_int_equal(plan_pick_lead_by_email(l, 4, "ann@x.com", LEAD_ID, &sure), 2);
    /* Linked to nobody: the oldest of those not linked elsewhere. */
    assert_int_equal(plan_pick_lead_by_email(l, 4, "ann@x.com", CONTACT_ID, &sure), 1);
    assert_true(sure);
    strcpy(l[2].id, "950");
    /* All linked elsewhere: the oldest of all, not sure (the sfdc ids are looked up too). */
    assert_int_equal(plan_pick_lead_by_email(l, 1, "ann@x.com", LEAD_ID, &sure), 0);
    assert_false(sure);
    assert_int_equal(plan_pick_lead_by_email(l, 4, "carl@x.com", LEAD_ID, &sure), -1);
    assert_false(sure);
    /* By the ids Marketo's own sync keeps: the oldest of several (15 characters compared). */
    l[1].sfdc_lead_id = "00Q5g000000LeadXYZ";
    assert_int_equal(plan_pick_lead_by_sfdc(l, 4, false, LEAD_ID), 2);
    assert_int_equal(plan_pick_lead_by_sfdc(l, 4, true, "0035g000000Othr"), 0);
    assert_int_equal(plan_pick_lead_by_sfdc(l, 4, true, CONTACT_ID), -1);
}

static void new_lead_placeholders_and_nothing_to_remove(void **state) {
    (void)state;
    event e = mkto_ev(EV_MEMBER_STATUS_CHANGED, "Registered", T(1));
    strcpy(e.email, "ann@x.com");
    e.first_name[0] = e.last_name[0] = e.company[0] = '\0'; /* Marketo gave no names */
    sf_new_lead l = plan_new_lead(&e, "[not provided]", "[none]");
    assert_string_equal(l.email, "ann@x.com");
    assert_string_equal(l.first_name, "");
    assert_string_equal(l.last_name, "[not provided]");
    assert_string_equal(l.company, "[none]");
    strcpy(e.last_name, "Lee");
    strcpy(e.company, "Acme");
    l = plan_new_lead(&e, "[not provided]", "[none]");
    assert_string_equal(l.last_name, "Lee");
    assert_string_equal(l.company, "Acme");
    assert_true(plan_nothing_to_remove(false, false));
    assert_false(plan_nothing_to_remove(false, true));
    assert_false(plan_nothing_to_remove(true, false));
}

/* Reading Marketo's sfdc ids toward Salesforce: always when an addition has no email; as the
 * ids-before-email refinement only while changes toward Marketo do not want its budget. */
static void sfdc_ids_read_only_when_marketo_can_spare_it(void **state) {
    (void)state;
    assert_true(plan_read_sfdc_ids(true, true));
    assert_true(plan_read_sfdc_ids(true, false));
    assert_true(plan_read_sfdc_ids(false, false));
    assert_false(plan_read_sfdc_ids(false, true));
}

static void retry_until_max_attempts_with_backoff(void **state) {
    (void)state;
    assert_int_equal(plan_retry(1, 3), IT_RETRY);
    assert_int_equal(plan_retry(2, 3), IT_RETRY);
    assert_int_equal(plan_retry(3, 3), IT_DEAD);
    /* base * 2^(n-1), capped, jittered into [50%, 100%]. */
    assert_int_equal(plan_backoff_ms(1, 1000, 60000, -1, 0), 500);
    assert_int_equal(plan_backoff_ms(1, 1000, 60000, -1, 500), 1000);
    assert_int_equal(plan_backoff_ms(3, 1000, 60000, -1, 0), 2000);
    assert_int_equal(plan_backoff_ms(30, 1000, 60000, -1, 30000), 60000);
    assert_int_equal(plan_backoff_ms(1, 1000, 60000, 7000, 0), 7000); /* Retry-After */
}

static void campaign_statuses_known_while_fresh(void **state) {
    (void)state;
    const char *labels[] = {"Sent", "Signed Up"};
    assert_int_equal(plan_campaign_has_status(labels, 2, true, T(0), T(10), "Signed Up"),
                     PLAN_STATUS_PRESENT);
    assert_int_equal(plan_campaign_has_status(labels, 2, true, T(0), T(10), "Came"),
                     PLAN_STATUS_ABSENT);
    assert_int_equal(plan_campaign_has_status(labels, 2, false, T(0), T(10), "Came"),
                     PLAN_STATUS_UNKNOWN); /* more labels than kept */
    assert_int_equal(
        plan_campaign_has_status(labels, 2, true, T(0), T(0) + PLAN_STATUSES_FRESH_MS + 1, "Sent"),
        PLAN_STATUS_UNKNOWN);
    plan_result p;
    memset(&p, 0, sizeof p);
    p.kind = PLAN_APPLY;
    p.to_sf = p.sf_member = true;
    strcpy(p.sf_status, "Came");
    assert_true(plan_writes_sf_status(&p, false, ""));
    assert_true(plan_writes_sf_status(&p, true, "Sent"));
    assert_false(plan_writes_sf_status(&p, true, "Came"));
    p.sf_member = false;
    assert_false(plan_writes_sf_status(&p, true, "Sent"));
    assert_string_equal(plan_marketo_status(NULL), NOT_IN_PROGRAM);
    assert_string_equal(plan_marketo_status("Attended"), "Attended");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        /* Marketo program events */
        cmocka_unit_test(marketo_program_events),
        cmocka_unit_test(dead_letter_message),
        /* mapping lookup and park */
        cmocka_unit_test(mapping_lookup_and_park),
        cmocka_unit_test(disabled_mapping_of_another_pair),
        cmocka_unit_test(campaign_ids_are_case_sensitive),
        /* F7 */
        cmocka_unit_test(flow_actions),
        /* Salesforce events */
        cmocka_unit_test(salesforce_events),
        cmocka_unit_test(integration_user_unset),
        /* newest wins */
        cmocka_unit_test(newest_wins),
        cmocka_unit_test(unknown_state_is_never_stale),
        /* echo and duplicate */
        cmocka_unit_test(echo_and_duplicate),
        cmocka_unit_test(own_side_change_is_not_a_duplicate),
        cmocka_unit_test(newer_change_overwritten_by_a_late_write_is_reasserted),
        cmocka_unit_test(event_is_reasserted_over_a_write_of_unknown_outcome),
        cmocka_unit_test(salesforce_save_after_the_event_supersedes_it),
        /* the round trip's test person */
        cmocka_unit_test(roundtrip_person_is_narrow),
        cmocka_unit_test(roundtrip_person_change_by_integration_user_applies),
        cmocka_unit_test(roundtrip_person_echoes_are_still_dropped),
        cmocka_unit_test(roundtrip_person_save_by_integration_user_supersedes),
        cmocka_unit_test(first_sight_with_equal_fields),
        /* next */
        cmocka_unit_test(next_after_marketo_event),
        cmocka_unit_test(next_after_salesforce_event),
        cmocka_unit_test(deletion_of_a_replaced_member),
        cmocka_unit_test(next_after_flow_action),
        cmocka_unit_test(next_after_unmapped_flow_action_keeps_marketo_side),
        cmocka_unit_test(no_plan_fields_on_non_apply),
        /* convergence */
        cmocka_unit_test(convergence_marketo),
        cmocka_unit_test(convergence_salesforce),
        cmocka_unit_test(convergence_mixed_sources),
        cmocka_unit_test(convergence_readd_recording_drops),
        cmocka_unit_test(failures_mean_retry_dead_or_a_wait),
        cmocka_unit_test(salesforce_records_by_write),
        cmocka_unit_test(marketo_records_and_the_1037_skip),
        cmocka_unit_test(recorded_after_a_write_and_a_backward_move),
        cmocka_unit_test(waits_for_a_write_of_ours_still_landing),
        cmocka_unit_test(which_lead_is_the_person),
        cmocka_unit_test(new_lead_placeholders_and_nothing_to_remove),
        cmocka_unit_test(sfdc_ids_read_only_when_marketo_can_spare_it),
        cmocka_unit_test(retry_until_max_attempts_with_backoff),
        cmocka_unit_test(campaign_statuses_known_while_fresh),
    };
    return cmocka_run_group_tests_name("plan", tests, NULL, NULL);
}
