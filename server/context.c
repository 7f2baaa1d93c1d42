/*
 * The server's shared context (context.h): the attestation reason codes the records and metrics
 * use, and each worker's cache of decrypted tenant CAs, which handlers read through r->w.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "context.h"
#include "db.h"

static const char *const reason_codes[RP_REASON_COUNT] = {
    [RP_REASON_PASS] = "pass",
    [RP_REASON_MALFORMED_EVIDENCE] = "malformed_evidence",
    [RP_REASON_BAD_SIGNATURE] = "bad_signature",
    [RP_REASON_UEID_MISMATCH] = "ueid_mismatch",
    [RP_REASON_NONCE_UNKNOWN] = "nonce_unknown",
    [RP_REASON_NONCE_REPLAYED] = "nonce_replayed",
    [RP_REASON_NONCE_EXPIRED] = "nonce_expired",
    [RP_REASON_NONCE_WRONG_DEVICE] = "nonce_wrong_device",
    [RP_REASON_UNCLAIMED] = "unclaimed",
    [RP_REASON_BLOCKED] = "blocked",
    [RP_REASON_MEASUREMENTS_INCONSISTENT] = "measurements_inconsistent",
    [RP_REASON_POLICY] = "policy",
    [RP_REASON_UNKNOWN_IMAGE] = "unknown_image",
    [RP_REASON_DEBUG_ENABLED] = "debug_enabled",
    [RP_REASON_NO_COMPONENTS] = "no_components",
    [RP_REASON_NO_REGISTER] = "no_measurement_register",
    [RP_REASON_SECURITY_COUNTER] = "security_counter_mismatch",
    [RP_REASON_DEVELOPMENT] = "development_mode",
    [RP_REASON_QUARANTINED] = "quarantined",
    [RP_REASON_CHANNEL_MISMATCH] = "channel_mismatch",
    [RP_REASON_CHANNEL_EXPIRED] = "channel_expired",
    [RP_REASON_CHANNEL_REUSED] = "channel_reused",
};

const char *rp_attest_reason_code(rp_attest_reason_t r)
{
    return (unsigned)r < RP_REASON_COUNT ? reason_codes[r] : "unknown";
}

/* A cached CA set is read again after RP_CA_CACHE_TTL (another replica's successor), and at
 * once when time changed which of its CAs signs or is valid (rp_ca_t's changes_at), or when the
 * clock went back past its loading. */
static bool ca_fresh(const rp_ca_t *c, int64_t now)
{
    return now >= c->loaded && now - c->loaded < RP_CA_CACHE_TTL && now < c->changes_at;
}

rp_err_t rp_worker_ca(rp_worker_t *w, const rp_tenant_t *tenant, const rp_ca_t **out)
{
    int64_t now = (int64_t)time(NULL);
    rp_ca_t *slot = NULL;
    rp_err_t err;

    for (int i = 0; i < RP_CA_CACHE; i++) {
        rp_ca_t *c = &w->cas[i];
        if (c->tenant_id[0] != '\0' && strcmp(c->tenant_id, tenant->id) == 0) {
            if (ca_fresh(c, now)) {
                *out = c;
                return RP_OK;
            }
            slot = c;
            break;
        }
        if (slot == NULL && c->tenant_id[0] == '\0')
            slot = c;
    }
    if (slot == NULL) /* full: evict the oldest */
        for (int i = 0; i < RP_CA_CACHE; i++)
            if (slot == NULL || w->cas[i].loaded < slot->loaded)
                slot = &w->cas[i];
    rp_ca_free(slot);
    err = rp_ca_get_or_create(w->store, w->srv->master_key, tenant, now, slot);
    if (err != RP_OK)
        return err;
    *out = slot;
    return RP_OK;
}

rp_err_t rp_worker_ca_by_id(rp_worker_t *w, const char *tenant_id, const rp_ca_t **out)
{
    int64_t now = (int64_t)time(NULL);
    rp_tenant_t tenant;
    rp_err_t err;

    for (int i = 0; i < RP_CA_CACHE; i++) {
        rp_ca_t *c = &w->cas[i];
        if (c->tenant_id[0] != '\0' && strcmp(c->tenant_id, tenant_id) == 0 && ca_fresh(c, now)) {
            *out = c;
            return RP_OK;
        }
    }
    err = rp_store_tenant_get(w->store, tenant_id, &tenant);
    return err == RP_OK ? rp_worker_ca(w, &tenant, out) : err;
}

rp_err_t rp_server_store_open(const rp_server_t *srv, rp_store_t **store)
{
    if (srv->database[0] != '\0')
        return rp_store_open_target(srv->database, store);
    return rp_store_open(srv->data_dir, store);
}

void rp_server_database_target(const rp_server_t *srv, char *out, size_t cap)
{
    if (srv->database[0] != '\0')
        snprintf(out, cap, "%s", srv->database);
    else
        snprintf(out, cap, "%s/rampart.db", srv->data_dir);
}

rp_err_t rp_server_store_open_existing(const rp_server_t *srv, rp_store_t **store)
{
    char target[sizeof(srv->database) + PATH_MAX];

    rp_server_database_target(srv, target, sizeof(target));
    return rp_store_open_existing(target, store);
}

rp_err_t rp_server_blobs_open(const rp_server_t *srv, rp_store_t *store, rp_blobs_t **blobs)
{
    rp_err_t err = rp_blobs_open(srv->blobs, srv->data_dir, store, blobs);

    if (err == RP_OK) /* (served only while this replica's hold stands: hold.h) */
        rp_blobs_gate(*blobs, &srv->hold_lost);
    return err;
}

void rp_server_database_describe(const rp_server_t *srv, char *out, size_t cap)
{
    char target[sizeof(srv->database) + PATH_MAX];

    rp_server_database_target(srv, target, sizeof(target));
    rp_db_target_describe(target, out, cap);
}
