/* mapping_patch — JSON merge patch of a mapping. See include/mapping_patch.h. */
#include "mapping_patch.h"

#include <cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The stored mapping as a PUT body would give it. */
static cJSON *as_put_body(const mapping *m) {
    cJSON *o = cJSON_CreateObject();
    cJSON *sm = cJSON_CreateObject();
    if (!o || !sm) {
        cJSON_Delete(o);
        cJSON_Delete(sm);
        return NULL;
    }
    cJSON_AddStringToObject(o, "campaignId", m->campaign_id);
    cJSON_AddBoolToObject(o, "enabled", m->enabled);
    for (int i = 0; i < m->nmap; i++)
        cJSON_AddStringToObject(sm, m->map[i].marketo, m->map[i].salesforce);
    cJSON_AddItemToObject(o, "statusMap", sm);
    return o;
}

/* RFC 7396 section 2, MergePatch(Target, Patch): a patch that is an object is merged into
 * an object target member by member (null removes); anything else replaces the target.
 * Takes the patch value; returns the new target (the old one consumed), NULL when out of
 * memory. https://www.rfc-editor.org/rfc/rfc7396#section-2 */
static cJSON *merge(cJSON *target, cJSON *patch) {
    if (!cJSON_IsObject(patch)) {
        cJSON_Delete(target);
        return patch;
    }
    if (!cJSON_IsObject(target)) {
        cJSON_Delete(target);
        target = cJSON_CreateObject();
        if (!target) {
            cJSON_Delete(patch);
            return NULL;
        }
    }
    while (patch->child) {
        cJSON *item = cJSON_DetachItemViaPointer(patch, patch->child);
        char *name = strdup(item->string);
        cJSON *old = cJSON_GetObjectItemCaseSensitive(target, item->string);
        bool ok = name != NULL;
        if (ok && cJSON_IsNull(item)) {
            cJSON_DeleteItemFromObjectCaseSensitive(target, name);
            cJSON_Delete(item);
        } else if (ok) {
            /* A member that exists keeps its place (a statusMap stays in its order). */
            cJSON *base = old ? cJSON_Duplicate(old, true) : NULL;
            cJSON *merged = NULL;
            if (old && !base)
                cJSON_Delete(item);
            else
                merged = merge(base, item);
            ok = merged && (old ? cJSON_ReplaceItemInObjectCaseSensitive(target, name, merged)
                                : cJSON_AddItemToObject(target, name, merged));
            if (merged && !ok) cJSON_Delete(merged);
        } else {
            cJSON_Delete(item);
        }
        free(name);
        if (!ok) {
            cJSON_Delete(patch);
            cJSON_Delete(target);
            return NULL;
        }
    }
    cJSON_Delete(patch);
    return target;
}

/* Appends ", \"name\"" (the first without the comma) to a list of names, within size. */
static void add_name(char *list, size_t size, const char *name) {
    size_t n = strlen(list);
    snprintf(list + n, size - n, "%s\"%.60s\"", n ? ", " : "", name);
}

/* Refuses members a mapping patch cannot hold: unknown ones, the read-only ones, and null
 * for the members a mapping cannot be without. 0, or -1 with err. */
static int check_members(const cJSON *patch, char *err, size_t errlen) {
    char unknown[300] = "", fixed[120] = "";
    for (const cJSON *m = patch->child; m; m = m->next) {
        const char *k = m->string;
        if (!strcmp(k, "programId") || !strcmp(k, "createdAt") || !strcmp(k, "updatedAt"))
            add_name(fixed, sizeof fixed, k);
        else if (strcmp(k, "campaignId") && strcmp(k, "enabled") && strcmp(k, "statusMap") &&
                 strcmp(k, "force"))
            add_name(unknown, sizeof unknown, k);
        else if (cJSON_IsNull(m) && (!strcmp(k, "campaignId") || !strcmp(k, "enabled"))) {
            snprintf(err, errlen,
                     "%s cannot be removed (null): a mapping always has it; send the new value", k);
            return -1;
        }
    }
    if (*unknown) {
        snprintf(err, errlen,
                 "unknown fields %s: a mapping patch may hold campaignId, enabled, statusMap "
                 "and force",
                 unknown);
        return -1;
    }
    if (*fixed) {
        snprintf(err, errlen,
                 "%s cannot be changed: the program is the mapping's path, and the times are "
                 "kept by the service",
                 fixed);
        return -1;
    }
    return 0;
}

mapping_patch_rc mapping_patch_apply(const mapping *stored, const char *patch, size_t len,
                                     char **put_body, char *err, size_t errlen) {
    *put_body = NULL;
    const char *end = NULL;
    cJSON *p = cJSON_ParseWithLengthOpts(patch, len, &end, 0);
    while (p && end && (size_t)(end - patch) < len && strchr(" \t\r\n", *end))
        end++;
    if (!cJSON_IsObject(p) || (end && (size_t)(end - patch) < len && *end)) {
        cJSON_Delete(p);
        snprintf(err, errlen,
                 "the body must be one JSON object, a merge patch of the mapping: the fields to "
                 "change, null to remove one (e.g. {\"enabled\": false} or {\"statusMap\": "
                 "{\"No Show\": null}})");
        return MAPPING_PATCH_REFUSED;
    }
    if (check_members(p, err, errlen) != 0) {
        cJSON_Delete(p);
        return MAPPING_PATCH_REFUSED;
    }
    cJSON *target = as_put_body(stored);
    cJSON *result = target ? merge(target, p) : NULL;
    if (!target) cJSON_Delete(p);
    *put_body = result ? cJSON_PrintUnformatted(result) : NULL;
    cJSON_Delete(result);
    if (!*put_body) {
        snprintf(err, errlen, "out of memory");
        return MAPPING_PATCH_OUT_OF_MEMORY;
    }
    return MAPPING_PATCH_APPLIED;
}
