/*
 * The store's schema: its migrations, in order, each run once in its own transaction (the
 * schema_version table counts them), whatever the driver. Never edit one that has shipped: add
 * the next. Their SQL is SQLite's as it shipped; a driver for another engine owns what it must
 * change of it (db.h: "the type names of a migration").
 */
#include <stdio.h>

#include "rampart/log.h"
#include "store/schema_pg.h"
#include "store_internal.h"

/* The counters' migration's count of them from the rows, into empty device_counts and
 * deployment_counts (that migration; rp_store_counters_recount): shipped with it, never edited. The
 * conditions are SQ_DEV_*'s and the rules of sq_device_counts_move and deploy_counts_move. */
#define COUNTERS_SEED                                                                              \
    "INSERT INTO device_counts (tenant_id, state, n)"                                              \
    " SELECT tenant_id, 'total', count(*) FROM devices GROUP BY tenant_id;"                        \
    "INSERT INTO device_counts (tenant_id, state, n) SELECT tenant_id, 'attested', count(*)"       \
    " FROM devices WHERE last_passed = 1 AND blocked = 0 AND quarantined_at = 0"                   \
    " GROUP BY tenant_id;"                                                                         \
    "INSERT INTO device_counts (tenant_id, state, n) SELECT tenant_id, 'failed', count(*)"         \
    " FROM devices WHERE last_passed = 0 GROUP BY tenant_id;"                                      \
    "INSERT INTO device_counts (tenant_id, state, n) SELECT tenant_id, 'blocked', count(*)"        \
    " FROM devices WHERE blocked != 0 GROUP BY tenant_id;"                                         \
    "INSERT INTO device_counts (tenant_id, state, n) SELECT tenant_id, 'quarantined', count(*)"    \
    " FROM devices WHERE quarantined_at != 0 GROUP BY tenant_id;"                                  \
    "INSERT INTO device_counts (tenant_id, state, n) SELECT tenant_id, 'never_seen', count(*)"     \
    " FROM devices WHERE last_attestation IS NULL GROUP BY tenant_id;"                             \
    "UPDATE device_groups SET members ="                                                           \
    " (SELECT count(*) FROM group_members m WHERE m.group_id = device_groups.id);"                 \
    "UPDATE deployments SET selected = (SELECT count(*) FROM group_members m"                      \
    " WHERE m.group_id = deployments.group_id"                                                     \
    " AND rp_selects(deployments.id, deployments.rollout, m.device_id)),"                          \
    " reported_selected = (SELECT count(*) FROM device_updates u JOIN group_members m"             \
    " ON m.device_id = u.device_id WHERE u.deployment_id = deployments.id"                         \
    " AND m.group_id = deployments.group_id"                                                       \
    " AND rp_selects(deployments.id, deployments.rollout, u.device_id)),"                          \
    " reached_pending = (SELECT count(*) FROM deployment_reached r LEFT JOIN device_updates u"     \
    " ON u.deployment_id = r.deployment_id AND u.device_id = r.device_id"                          \
    " WHERE r.deployment_id = deployments.id AND CASE WHEN u.device_id IS NULL THEN"               \
    " EXISTS (SELECT 1 FROM group_members m WHERE m.device_id = r.device_id"                       \
    " AND m.group_id = deployments.group_id)"                                                      \
    " AND rp_selects(deployments.id, deployments.rollout, r.device_id)"                            \
    " ELSE u.state = 'pending' END);"                                                              \
    "INSERT INTO deployment_counts (deployment_id, state, n)"                                      \
    " SELECT deployment_id, state, count(*) FROM device_updates GROUP BY deployment_id, state;"

/* The versions' migration's count of them from the rows, into an empty version_counts (migration
 * 24; rp_store_counters_recount): shipped with it, never edited. The rule of sq_versions_move: a
 * device counts once per app it reported, under its tenant and its group's product ('' in none). */
#define VERSIONS_SEED                                                                              \
    "INSERT INTO version_counts (tenant_id, product_id, component, version, n)"                    \
    " SELECT d.tenant_id, coalesce(g.product_id, ''), a.component, a.version, count(*)"            \
    " FROM devices d JOIN device_apps a ON a.device_id = d.id"                                     \
    " LEFT JOIN group_members m ON m.device_id = d.id"                                             \
    " LEFT JOIN device_groups g ON g.id = m.group_id GROUP BY 1, 2, 3, 4;"

/* Migration 25's count of the deployments' counters from the rows, over the devices each targets
 * now (a member of its group its rollout selects: DEPLOY_TARGETS): the members selected, those of
 * them that reported, those reached whose report is pending or missing, the devices no longer
 * targeted that it reached or that reported it (departed), and the reports of the targeted ones
 * per state. The rules of deploy_counts_move (store_updates.c). Shipped with it, never edited. */
/* clang-format off */
#define DEPLOY_TARGETS(dev)                                                                        \
    " (EXISTS (SELECT 1 FROM group_members m WHERE m.device_id = " dev                             \
    " AND m.group_id = deployments.group_id)"                                                      \
    " AND rp_selects(deployments.id, deployments.rollout, " dev "))"
#define DEPLOY_COUNTERS_SEED_25                                                                    \
    "DELETE FROM deployment_counts;"                                                               \
    "UPDATE deployments SET selected = (SELECT count(*) FROM group_members m"                      \
    " WHERE m.group_id = deployments.group_id"                                                     \
    " AND rp_selects(deployments.id, deployments.rollout, m.device_id)),"                          \
    " reported_selected = (SELECT count(*) FROM device_updates u"                                  \
    " WHERE u.deployment_id = deployments.id AND" DEPLOY_TARGETS("u.device_id") "),"               \
    " reached_pending = (SELECT count(*) FROM deployment_reached r LEFT JOIN device_updates u"     \
    " ON u.deployment_id = r.deployment_id AND u.device_id = r.device_id"                          \
    " WHERE r.deployment_id = deployments.id AND (u.device_id IS NULL OR u.state = 'pending')"     \
    " AND" DEPLOY_TARGETS("r.device_id") "),"                                                      \
    " departed = (SELECT count(*) FROM deployment_reached r"                                       \
    " WHERE r.deployment_id = deployments.id AND NOT" DEPLOY_TARGETS("r.device_id") ")"            \
    " + (SELECT count(*) FROM device_updates u WHERE u.deployment_id = deployments.id"             \
    " AND NOT EXISTS (SELECT 1 FROM deployment_reached r WHERE r.deployment_id = deployments.id"   \
    " AND r.device_id = u.device_id) AND NOT" DEPLOY_TARGETS("u.device_id") ");"                   \
    "INSERT INTO deployment_counts (deployment_id, state, n)"                                      \
    " SELECT deployments.id, u.state, count(*) FROM deployments JOIN device_updates u"             \
    " ON u.deployment_id = deployments.id WHERE" DEPLOY_TARGETS("u.device_id")                     \
    " GROUP BY deployments.id, u.state;"
/* clang-format on */

/* Persisted: each migration runs once, in order, in its own transaction. Never edit one that has
 * shipped; add the next. Say of each whether a replica of the previous version may keep serving
 * on it during a rolling upgrade (docs/operations.md, "Upgrading replicas"): yes when it adds only
 * what an older server neither reads nor must write. */
const char *const rp_store_migrations[] = {
    /* 1: tenants, tokens, devices, nonces, attestations, certificates, tenant CAs */
    "CREATE TABLE tenants (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " created INTEGER NOT NULL);"
    "CREATE TABLE tokens (id TEXT PRIMARY KEY, hash BLOB NOT NULL UNIQUE,"
    " tenant_id TEXT REFERENCES tenants(id), role INTEGER NOT NULL, created INTEGER NOT NULL);"
    "CREATE TABLE devices (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id),"
    " blocked INTEGER NOT NULL DEFAULT 0, claimed_at INTEGER NOT NULL,"
    " blocked_at INTEGER NOT NULL DEFAULT 0, spki BLOB, last_attestation INTEGER);"
    "CREATE INDEX devices_tenant ON devices(tenant_id, id);"
    "CREATE TABLE nonces (nonce BLOB PRIMARY KEY, device_id TEXT NOT NULL,"
    " expires INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
    "CREATE INDEX nonces_expires ON nonces(expires);"
    "CREATE TABLE attestations (id INTEGER PRIMARY KEY, device_id TEXT NOT NULL,"
    " tenant_id TEXT, at INTEGER NOT NULL, passed INTEGER NOT NULL, reason TEXT NOT NULL,"
    " claims TEXT NOT NULL, cert_serial TEXT);"
    "CREATE INDEX attestations_device ON attestations(device_id, id);"
    "CREATE TABLE certificates (serial TEXT PRIMARY KEY, tenant_id TEXT NOT NULL,"
    " device_id TEXT NOT NULL, not_before INTEGER NOT NULL, not_after INTEGER NOT NULL,"
    " revoked_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX certificates_device ON certificates(device_id, not_after);"
    "CREATE INDEX certificates_revoked ON certificates(tenant_id, revoked_at);"
    "CREATE TABLE cas (tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),"
    " cert_pem TEXT NOT NULL, key_pem TEXT NOT NULL, not_after INTEGER NOT NULL,"
    " crl_number INTEGER NOT NULL DEFAULT 0);",
    /* 2: nonces carry their own proof (server/device/nonce.h): only spent ones are kept, until they
     * expire, so that each is used once. */
    "DROP TABLE nonces;"
    "CREATE TABLE spent_nonces (nonce BLOB PRIMARY KEY, expires INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX spent_nonces_expires ON spent_nonces(expires);",
    /* 3: updates - image signing keys, images, uploads in progress, products, device groups,
     * group membership, deployments and each device's update state */
    "CREATE TABLE image_keys (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id),"
    " name TEXT NOT NULL, alg TEXT NOT NULL, spki BLOB NOT NULL, keyhash TEXT NOT NULL,"
    " created INTEGER NOT NULL, UNIQUE (tenant_id, name), UNIQUE (tenant_id, keyhash));"
    "CREATE TABLE uploads (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id),"
    " size INTEGER NOT NULL, created INTEGER NOT NULL);"
    "CREATE INDEX uploads_created ON uploads(created);"
    "CREATE TABLE images (tenant_id TEXT NOT NULL REFERENCES tenants(id), id TEXT NOT NULL,"
    " component TEXT NOT NULL, version TEXT NOT NULL, security_counter INTEGER,"
    " type TEXT NOT NULL, size INTEGER NOT NULL, image_hash TEXT NOT NULL,"
    " key_id TEXT NOT NULL REFERENCES image_keys(id), uploaded INTEGER NOT NULL,"
    " PRIMARY KEY (tenant_id, id)) WITHOUT ROWID;"
    "CREATE INDEX images_hash ON images(tenant_id, image_hash);"
    "CREATE TABLE products (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id),"
    " name TEXT NOT NULL, created INTEGER NOT NULL, UNIQUE (tenant_id, name));"
    "CREATE TABLE device_groups (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL,"
    " product_id TEXT NOT NULL REFERENCES products(id), name TEXT NOT NULL,"
    " allow_unknown_images INTEGER NOT NULL, created INTEGER NOT NULL,"
    " UNIQUE (product_id, name));"
    "CREATE TABLE group_members (device_id TEXT PRIMARY KEY REFERENCES devices(id),"
    " group_id TEXT NOT NULL REFERENCES device_groups(id), assigned INTEGER NOT NULL);"
    "CREATE INDEX group_members_group ON group_members(group_id, device_id);"
    "CREATE TABLE deployments (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL,"
    " group_id TEXT NOT NULL REFERENCES device_groups(id), rollout INTEGER NOT NULL,"
    " created INTEGER NOT NULL, seq INTEGER NOT NULL);"
    "CREATE INDEX deployments_group ON deployments(group_id, seq);"
    "CREATE TABLE deployment_images (deployment_id TEXT NOT NULL REFERENCES deployments(id),"
    " tenant_id TEXT NOT NULL, image_id TEXT NOT NULL, PRIMARY KEY (deployment_id, image_id),"
    " FOREIGN KEY (tenant_id, image_id) REFERENCES images(tenant_id, id)) WITHOUT ROWID;"
    "CREATE TABLE device_updates (device_id TEXT NOT NULL,"
    " deployment_id TEXT NOT NULL REFERENCES deployments(id), state TEXT NOT NULL,"
    " detail TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (deployment_id, device_id))"
    " WITHOUT ROWID;",
    /* 4: signed update metadata - the service's online key per tenant (encrypted under the
     * master key) and the root metadata the operator signs */
    "CREATE TABLE update_keys (tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),"
    " key_pem TEXT NOT NULL, spki BLOB NOT NULL, created INTEGER NOT NULL);"
    "CREATE TABLE update_roots (tenant_id TEXT NOT NULL REFERENCES tenants(id),"
    " version INTEGER NOT NULL, envelope TEXT NOT NULL, expires INTEGER NOT NULL,"
    " created INTEGER NOT NULL, PRIMARY KEY (tenant_id, version)) WITHOUT ROWID;",
    /* 5: online keys rotate: each tenant's are numbered, the newest being the one the next root
     * should name */
    "ALTER TABLE update_keys RENAME TO update_keys_4;"
    "CREATE TABLE update_keys (tenant_id TEXT NOT NULL REFERENCES tenants(id),"
    " seq INTEGER NOT NULL, key_pem TEXT NOT NULL, spki BLOB NOT NULL, created INTEGER NOT NULL,"
    " PRIMARY KEY (tenant_id, seq)) WITHOUT ROWID;"
    "INSERT INTO update_keys SELECT tenant_id, 1, key_pem, spki, created FROM update_keys_4;"
    "DROP TABLE update_keys_4;",
    /* 6: the largest security counter each device's root of trust accepts, as it reports it
     * (a TPM: 64), so that a deployment none of them could install is refused */
    "CREATE TABLE device_counter_max ("
    " device_id TEXT PRIMARY KEY REFERENCES devices(id),"
    " security_counter_max INTEGER NOT NULL, since INTEGER NOT NULL) WITHOUT ROWID;",
    /* 7: attestation failures that prove nothing about a device, counted per source address
     * instead of in the device's history; token expiry and last use; name keys; appraisal
     * policies */
    "CREATE TABLE unproven_sources (address TEXT PRIMARY KEY, first_at INTEGER NOT NULL,"
    " last_at INTEGER NOT NULL, count INTEGER NOT NULL, last_reason TEXT NOT NULL,"
    " last_device_id TEXT NOT NULL);"
    "CREATE INDEX unproven_sources_last ON unproven_sources(last_at);"
    /* tokens may expire (NULL: never) and remember when they were last used */
    "ALTER TABLE tokens ADD COLUMN expires INTEGER;"
    "ALTER TABLE tokens ADD COLUMN last_used INTEGER;"
    /* each name's key (names.h), unique where the name is, so that look-alikes cannot coexist;
     * rows made before get theirs at open (name_keys_fill: the key needs ICU, not SQL) */
    "ALTER TABLE tenants ADD COLUMN name_key TEXT;"
    "CREATE UNIQUE INDEX tenants_name_key ON tenants(name_key);"
    "ALTER TABLE products ADD COLUMN name_key TEXT;"
    "CREATE UNIQUE INDEX products_name_key ON products(tenant_id, name_key);"
    "ALTER TABLE device_groups ADD COLUMN name_key TEXT;"
    "CREATE UNIQUE INDEX device_groups_name_key ON device_groups(product_id, name_key);"
    "ALTER TABLE image_keys ADD COLUMN name_key TEXT;"
    "CREATE UNIQUE INDEX image_keys_name_key ON image_keys(tenant_id, name_key);"
    /* each tenant's appraisal policy; a tenant without a row has the strict default. Tenants
     * made before keep what appraisal did then: debug allowed, no components nor register
     * required (their operators tighten it; docs/operations.md) */
    "CREATE TABLE tenant_policies (tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),"
    " require_components INTEGER NOT NULL, require_register INTEGER NOT NULL,"
    " allow_debug INTEGER NOT NULL, updated INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO tenant_policies SELECT id, 0, 0, 1, created FROM tenants;",
    /* 8: names have two keys (names.h: the skeleton of the case fold, and the fold of the
     * skeleton of the name as written), each unique where the name is; the first changed
     * meaning, so every key is made again at open (name_keys_fill) */
    "ALTER TABLE tenants ADD COLUMN name_key_written TEXT;"
    "CREATE UNIQUE INDEX tenants_name_key_written ON tenants(name_key_written);"
    "ALTER TABLE products ADD COLUMN name_key_written TEXT;"
    "CREATE UNIQUE INDEX products_name_key_written ON products(tenant_id, name_key_written);"
    "ALTER TABLE device_groups ADD COLUMN name_key_written TEXT;"
    "CREATE UNIQUE INDEX device_groups_name_key_written"
    " ON device_groups(product_id, name_key_written);"
    "ALTER TABLE image_keys ADD COLUMN name_key_written TEXT;"
    "CREATE UNIQUE INDEX image_keys_name_key_written ON image_keys(tenant_id, name_key_written);"
    "UPDATE tenants SET name_key = NULL;"
    "UPDATE products SET name_key = NULL;"
    "UPDATE device_groups SET name_key = NULL;"
    "UPDATE image_keys SET name_key = NULL;",
    /* 9: whether a device in development mode (it holds a development capability) may pass */
    "ALTER TABLE tenant_policies ADD COLUMN allow_development INTEGER NOT NULL DEFAULT 0;",
    /* 10: what devices report of what runs (store_status.c): the newest app list, the security
     * events once each by (device, seq), and per device the counts of what was dropped */
    "CREATE TABLE device_reports (device_id TEXT PRIMARY KEY REFERENCES devices(id),"
    " reported_at INTEGER NOT NULL, apps_at INTEGER NOT NULL, dropped_device INTEGER NOT NULL,"
    " dropped_service INTEGER NOT NULL, next_seq INTEGER NOT NULL,"
    " pruned_below INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE device_apps (device_id TEXT NOT NULL REFERENCES devices(id),"
    " component TEXT NOT NULL, version TEXT NOT NULL, state TEXT NOT NULL,"
    " restarts INTEGER NOT NULL, PRIMARY KEY (device_id, component)) WITHOUT ROWID;"
    "CREATE TABLE device_events (device_id TEXT NOT NULL REFERENCES devices(id),"
    " seq INTEGER NOT NULL, at INTEGER NOT NULL, kind TEXT NOT NULL, app TEXT NOT NULL,"
    " reason TEXT NOT NULL, received INTEGER NOT NULL, PRIMARY KEY (device_id, seq))"
    " WITHOUT ROWID;",
    /* 11: failure reports (store_reports.c): each device's reports once each by (device, seq)
     * and what was pruned; each tenant's crash buckets, their counts per version, group and day,
     * their samples; the debug files uploaded, by build ID */
    "CREATE TABLE reports (device_id TEXT NOT NULL REFERENCES devices(id),"
    " seq INTEGER NOT NULL, tenant_id TEXT NOT NULL, at INTEGER NOT NULL,"
    " received INTEGER NOT NULL, kind TEXT NOT NULL, component TEXT NOT NULL,"
    " version TEXT NOT NULL, code TEXT NOT NULL, reason TEXT NOT NULL, bucket TEXT,"
    " body TEXT NOT NULL, PRIMARY KEY (device_id, seq)) WITHOUT ROWID;"
    "CREATE INDEX reports_tenant ON reports(tenant_id, received);"
    "CREATE TABLE report_devices (device_id TEXT PRIMARY KEY REFERENCES devices(id),"
    " kept INTEGER NOT NULL, pruned INTEGER NOT NULL, pruned_below INTEGER NOT NULL,"
    " dropped_device INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE crash_buckets (tenant_id TEXT NOT NULL, id TEXT NOT NULL,"
    " component TEXT NOT NULL, signal INTEGER NOT NULL, signature TEXT NOT NULL,"
    " count INTEGER NOT NULL, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,"
    " PRIMARY KEY (tenant_id, id)) WITHOUT ROWID;"
    "CREATE INDEX crash_buckets_last ON crash_buckets(tenant_id, last_seen);"
    "CREATE TABLE crash_bucket_counts (tenant_id TEXT NOT NULL, bucket TEXT NOT NULL,"
    " dim TEXT NOT NULL, value TEXT NOT NULL, count INTEGER NOT NULL,"
    " PRIMARY KEY (tenant_id, bucket, dim, value)) WITHOUT ROWID;"
    "CREATE TABLE crash_samples (tenant_id TEXT NOT NULL, bucket TEXT NOT NULL,"
    " device_id TEXT NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL,"
    " received INTEGER NOT NULL, version TEXT NOT NULL, body TEXT NOT NULL,"
    " PRIMARY KEY (tenant_id, bucket, device_id, seq)) WITHOUT ROWID;"
    "CREATE TABLE debug_files (tenant_id TEXT NOT NULL REFERENCES tenants(id),"
    " build_id TEXT NOT NULL, size INTEGER NOT NULL, uploaded INTEGER NOT NULL,"
    " PRIMARY KEY (tenant_id, build_id)) WITHOUT ROWID;",
    /* 12: threat detection and quarantine (store_threat.c): per-tenant settings, counts per
     * subject per slot and the current slot's devices, alerts, webhooks, quarantine policies,
     * the signals they count per device, each device's quarantine, and every action taken */
    "CREATE TABLE threat_settings (tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),"
    " factor INTEGER NOT NULL, baseline_days INTEGER NOT NULL, window_seconds INTEGER NOT NULL,"
    " min_devices INTEGER NOT NULL, floor INTEGER NOT NULL, updated INTEGER NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE TABLE threat_counts (tenant_id TEXT NOT NULL, subject TEXT NOT NULL,"
    " slot INTEGER NOT NULL, count INTEGER NOT NULL, devices INTEGER NOT NULL,"
    " PRIMARY KEY (tenant_id, subject, slot)) WITHOUT ROWID;"
    "CREATE TABLE threat_devices (tenant_id TEXT NOT NULL, subject TEXT NOT NULL,"
    " slot INTEGER NOT NULL, device_id TEXT NOT NULL,"
    " PRIMARY KEY (tenant_id, subject, slot, device_id)) WITHOUT ROWID;"
    "CREATE TABLE threat_alerts (id INTEGER PRIMARY KEY, tenant_id TEXT NOT NULL,"
    " subject TEXT NOT NULL, opened_at INTEGER NOT NULL, last_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL, closed_at INTEGER NOT NULL, count INTEGER NOT NULL,"
    " devices INTEGER NOT NULL, baseline REAL NOT NULL, signals INTEGER NOT NULL,"
    " reason TEXT NOT NULL);"
    "CREATE INDEX threat_alerts_tenant ON threat_alerts(tenant_id, id);"
    "CREATE INDEX threat_alerts_open ON threat_alerts(closed_at, expires_at);"
    "CREATE TABLE webhooks (tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),"
    " url TEXT NOT NULL, salt BLOB NOT NULL, updated INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE quarantine_policies (tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),"
    " enabled INTEGER NOT NULL, kinds TEXT NOT NULL, threshold INTEGER NOT NULL,"
    " window_seconds INTEGER NOT NULL, updated INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE quarantine_signals (id INTEGER PRIMARY KEY, device_id TEXT NOT NULL,"
    " kind TEXT NOT NULL, at INTEGER NOT NULL);"
    "CREATE INDEX quarantine_signals_device ON quarantine_signals(device_id, at);"
    "ALTER TABLE devices ADD COLUMN quarantined_at INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE devices ADD COLUMN quarantine_reason TEXT NOT NULL DEFAULT '';"
    "CREATE TABLE threat_actions (id INTEGER PRIMARY KEY, tenant_id TEXT NOT NULL,"
    " device_id TEXT NOT NULL, at INTEGER NOT NULL, action TEXT NOT NULL, actor TEXT NOT NULL,"
    " reason TEXT NOT NULL);"
    "CREATE INDEX threat_actions_tenant ON threat_actions(tenant_id, id);",
    /* 13: the operator's crash capture switch per device group (store_updates.c): on
     * unless turned off; its devices learn it in their status report's answer */
    "ALTER TABLE device_groups ADD COLUMN crash_capture INTEGER NOT NULL DEFAULT 1;",
    /* 14: each crash bucket's symbolic key (store_reports.c: NULL not looked at yet, ''
     * its top frames do not all name a function and line, else the key its bucket is shown
     * under), and the webhook's outbox (store_threat.c): deliveries waiting, durable, with the
     * deliveries each tenant had dropped when full */
    "ALTER TABLE crash_buckets ADD COLUMN symbolic TEXT;"
    "CREATE INDEX crash_buckets_shown ON crash_buckets(tenant_id,"
    " coalesce(nullif(symbolic, ''), id));"
    "CREATE INDEX crash_buckets_unkeyed ON crash_buckets(tenant_id, id) WHERE symbolic IS NULL;"
    "CREATE TABLE webhook_outbox (n INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
    " tenant_id TEXT NOT NULL, body TEXT NOT NULL, created INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL, next_at INTEGER NOT NULL);"
    "CREATE INDEX webhook_outbox_next ON webhook_outbox(next_at);"
    "CREATE INDEX webhook_outbox_tenant ON webhook_outbox(tenant_id, n);"
    "CREATE TABLE webhook_outbox_dropped (tenant_id TEXT PRIMARY KEY, dropped INTEGER NOT NULL)"
    " WITHOUT ROWID;",
    /* 15: the web console (store_console.c): sessions and one-time login links, each by the
     * SHA-256 of its secret and tied to a token (revoking the token ends them); attestations by
     * tenant and time, for the console's histogram */
    "CREATE TABLE console_sessions (hash BLOB PRIMARY KEY, token_id TEXT NOT NULL,"
    " created INTEGER NOT NULL, expires INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX console_sessions_expires ON console_sessions(expires);"
    "CREATE TABLE console_links (hash BLOB PRIMARY KEY, token_id TEXT NOT NULL,"
    " expires INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX console_links_expires ON console_links(expires);"
    "CREATE INDEX attestations_tenant_at ON attestations(tenant_id, at);",
    /* 16: a deployment's status (store_updates.c: active, paused, stopped) and the devices each
     * reached (fetched targets naming it): a paused or stopped one is offered only to those.
     * Devices that reported a deployment had fetched targets naming it. */
    "ALTER TABLE deployments ADD COLUMN status TEXT NOT NULL DEFAULT 'active';"
    "CREATE TABLE deployment_reached (deployment_id TEXT NOT NULL REFERENCES deployments(id),"
    " device_id TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (deployment_id, device_id))"
    " WITHOUT ROWID;"
    "INSERT OR IGNORE INTO deployment_reached (deployment_id, device_id, at)"
    " SELECT deployment_id, device_id, at FROM device_updates;",
    /* 17: a deployment's devices counted by state in SQL, on an index that holds both (the
     * table's rows carry each device's detail: counting on them read every row) */
    "CREATE INDEX device_updates_state ON device_updates(deployment_id, state);",
    /* 18: each device's targets version (store_updates.c: rp_store_device_targets_version), so
     * that moving a device to a group whose deployment is older never lowers it; seeded with the
     * newest deployment each device was served */
    "CREATE TABLE device_targets (device_id TEXT PRIMARY KEY REFERENCES devices(id),"
    " version INTEGER NOT NULL, deployment_id TEXT NOT NULL) WITHOUT ROWID;"
    "INSERT INTO device_targets (device_id, version, deployment_id)"
    " SELECT r.device_id, max(d.seq), d.id FROM deployment_reached r"
    " JOIN deployments d ON d.id = r.deployment_id GROUP BY r.device_id;",
    /* 19: the blob store in the database (store/blob_db.c, --blobs database): each blob's row
     * (nameless while a put is written), its bytes in chunks of at most 256 KiB by their offset;
     * and the deltas made between images (the blob is deltas/FROM-TO.zst), with their SHA-256 and
     * size, and who is making one (a lease), so that a fleet asking at once makes it once.
     * Rolling upgrade: yes (new tables only) */
    "CREATE TABLE blobs (id TEXT PRIMARY KEY, name TEXT UNIQUE, size INTEGER NOT NULL,"
    " created INTEGER NOT NULL);"
    "CREATE INDEX blobs_created ON blobs(created);"
    "CREATE TABLE blob_chunks (blob_id TEXT NOT NULL REFERENCES blobs(id), pos INTEGER NOT NULL,"
    " len INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (blob_id, pos));"
    "CREATE TABLE deltas (from_image TEXT NOT NULL, to_image TEXT NOT NULL, sha256 TEXT,"
    " size INTEGER, lease_until INTEGER NOT NULL, PRIMARY KEY (from_image, to_image))"
    " WITHOUT ROWID;",
    /* 20: the device states a page filters on, each an index range (store_console.c): blocked,
     * quarantined, and failed - the verdict of the device's last attestation, kept on its row by
     * the write that records the attestation (store.c: NULL none recorded, 0 failed, 1 passed),
     * seeded from the attestation each device's row points at. Not for a rolling upgrade: an
     * older replica records attestations without it (the page lags until the next one) */
    "ALTER TABLE devices ADD COLUMN last_passed INTEGER;"
    "UPDATE devices SET last_passed = (SELECT a.passed FROM attestations a"
    " WHERE a.id = devices.last_attestation) WHERE last_attestation IS NOT NULL;"
    "CREATE INDEX devices_blocked ON devices(tenant_id, id) WHERE blocked != 0;"
    "CREATE INDEX devices_quarantined ON devices(tenant_id, id) WHERE quarantined_at != 0;"
    "CREATE INDEX devices_failed ON devices(tenant_id, id) WHERE last_passed = 0;",
    /* 21: counters read instead of counting rows (docs/scale.md): each tenant's devices per
     * state (store_console.c: sq_device_counts_move, moved in the transaction of every write of
     * a device's state), each tenant's devices whose certificate is expiring as last counted in
     * the background and when; each group's members; per deployment its reports per state, the
     * members it selects, those of them that reported, and the devices reached whose report
     * is pending or missing (store_updates.c: deploy_counts_move). All counted from the rows
     * (COUNTERS_SEED). Not for a rolling upgrade: an older replica's writes would not move them */
    "CREATE TABLE device_counts (tenant_id TEXT NOT NULL, state TEXT NOT NULL,"
    " n INTEGER NOT NULL, PRIMARY KEY (tenant_id, state)) WITHOUT ROWID;"
    "CREATE TABLE fleet_summaries (tenant_id TEXT PRIMARY KEY, cert_expiring INTEGER NOT NULL,"
    " counted_at INTEGER NOT NULL) WITHOUT ROWID;"
    "ALTER TABLE device_groups ADD COLUMN members INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE deployments ADD COLUMN selected INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE deployments ADD COLUMN reported_selected INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE deployments ADD COLUMN reached_pending INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE deployment_counts (deployment_id TEXT NOT NULL, state TEXT NOT NULL,"
    " n INTEGER NOT NULL, PRIMARY KEY (deployment_id, state)) WITHOUT ROWID;" COUNTERS_SEED,
    /* 22: the image an upload became (api/images.c), kept on the upload's row until the stale
     * uploads are dropped (a day), so that a POST of the same upload again - a client's retry
     * of one that succeeded, or one racing it - answers that image. Rolling upgrade: yes (an
     * older replica deletes the row as it did; a retry there is the 404 it was) */
    "ALTER TABLE uploads ADD COLUMN image_id TEXT;",
    /* 23: who holds a delta's lease (store_updates.c): a random token per claim, so that a maker
     * whose lease lapsed and was taken over (it was stopped, or stalled) renews, commits and
     * releases nothing of the new holder's. Rolling upgrade: yes (an older replica's claims
     * leave it NULL, and its renewals and commits are unconditional, as they were) */
    "ALTER TABLE deltas ADD COLUMN holder TEXT;",
    /* 24: the versions the fleet page shows, as counters (docs/scale.md): each tenant's devices
     * per (product, component, version) they report (store_console.c: sq_versions_move, moved in
     * the transaction of each status report's app list and each move to another group), counted
     * from the rows (VERSIONS_SEED). Not for a rolling upgrade: an older replica's writes would
     * not move them (`rampart-server counters recount` counts them again) */
    "CREATE TABLE version_counts (tenant_id TEXT NOT NULL, product_id TEXT NOT NULL,"
    " component TEXT NOT NULL, version TEXT NOT NULL, n INTEGER NOT NULL,"
    " PRIMARY KEY (tenant_id, product_id, component, version)) WITHOUT ROWID;" VERSIONS_SEED,
    /* 25: a deployment's progress over the devices it targets now (docs/api.md): a device moved
     * out of its group that it reached or that reported it counts as departed, apart, and its
     * report no longer counts among the states (store_updates.c: deploy_counts_move); counted
     * again from the rows (DEPLOY_COUNTERS_SEED_25). Not for a rolling upgrade: an older
     * replica's writes would not move departed, and would count a departed device's report */
    "ALTER TABLE deployments ADD COLUMN departed INTEGER NOT NULL DEFAULT 0;" /* and */
    DEPLOY_COUNTERS_SEED_25,
    /* 26: a tenant CA's successors (server/ca/ca.c: the rollover at two thirds of a CA's life):
     * generation 1, 2... beside the first (generation 0, in cas, which keeps the tenant's CRL
     * number); the key (tenant, generation) is what makes two replicas rolling over at once make
     * one successor. Rolling upgrade: yes (new table only; an older replica issues from and
     * trusts only the first CA, which is harmless for the month a successor is published before
     * it signs) */
    "CREATE TABLE ca_successors (tenant_id TEXT NOT NULL REFERENCES tenants(id),"
    " generation INTEGER NOT NULL, cert_pem TEXT NOT NULL, key_pem TEXT NOT NULL,"
    " not_after INTEGER NOT NULL, PRIMARY KEY (tenant_id, generation)) WITHOUT ROWID;",
    /* 27: the spent nonces' purge watermark (store.c: rp_store_nonces_purge), one row: the
     * largest `before` any replica purged with; a nonce that expired before it is refused as
     * spent, so that "usable once" holds whatever the replicas' clocks (docs/protocol.md).
     * Rolling upgrade: yes (an older replica purges without raising it, as before: the guard
     * holds once every replica runs this version) */
    ("CREATE TABLE spent_nonces_purged (below INTEGER NOT NULL);"
     "INSERT INTO spent_nonces_purged (below) VALUES (0);"),
    /* 28: why a certificate was revoked (rp_revoked_for_t): 1 by a proven failed attestation,
     * 0 by anything else (a block, a quarantine, or before this migration). A device whose only
     * bar is a proven failure may still reach its recovery routes with a certificate revoked for
     * that (device_api.c: rp_device_auth; docs/protocol.md "Verdicts"); the failure reports it
     * sends then are marked (reports.device_failed). Rolling upgrade: yes (an older replica
     * revokes with 0: the device is refused everywhere, as before; it marks no report) */
    ("ALTER TABLE certificates ADD COLUMN revoked_for INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE reports ADD COLUMN device_failed INTEGER NOT NULL DEFAULT 0;"),
    /* 29 (review r10 L3, L4): a certificate revoked by a block or a quarantine since lifted is
     * marked 2 (LIFTED, sq_device_bars_lifted) so that a later proven failure opens the device's
     * recovery routes as one before the bar would have; the devices with neither bar now are
     * marked here. What a device sends while its last attestation has failed counts, and is told
     * apart: a threat slot's devices that sent while failed (threat_devices.failed, counted in
     * threat_counts.failed_devices), an alert's (threat_alerts.failed_devices), a crash bucket's
     * crashes from them (crash_buckets.failed_count); none counted before this migration.
     * Rolling upgrade: yes (an older replica reads 2 as 0: the device is refused its recovery
     * routes, as before; it marks nothing on a release, and counts a failed device's signals
     * and crashes unmarked, as before) */
    ("UPDATE certificates SET revoked_for = 2 WHERE revoked_at <> 0 AND revoked_for = 0 AND"
     " device_id IN (SELECT id FROM devices WHERE blocked = 0 AND quarantined_at = 0);"
     "ALTER TABLE threat_devices ADD COLUMN failed INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE threat_counts ADD COLUMN failed_devices INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE threat_alerts ADD COLUMN failed_devices INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE crash_buckets ADD COLUMN failed_count INTEGER NOT NULL DEFAULT 0;"),
    /* 30: the nonce epoch (store.c: rp_store_nonces_watermark_reset; server/device/nonce.h): a
     * nonce carries the epoch it was issued in, and the transaction that spends it refuses one of
     * another epoch than this; `nonces reset-watermark` raises it as it lowers the purge watermark,
     * so every nonce issued before, whose spent row the purge may have deleted, is dead after it
     * (review r10 M1). Rolling upgrade: the schema yes (an older replica neither reads nor writes
     * it), the nonces no: their format changed with it (an older replica's nonces are refused by
     * this version as nonce_unknown, and this version's by it; the agent asks again), and an older
     * replica ignores the epoch, so a reset kills the old nonces only once every replica runs
     * this version */
    "ALTER TABLE spent_nonces_purged ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;",
    /* 31: the certificates EST re-enrollment recorded (store.c: rp_store_cert_reissue), which
     * --reenroll-per-hour counts in the transaction that records one, so that the limit holds
     * across replicas (it was counted in each replica's memory only). Those recorded before are
     * 0: not counted. Rolling upgrade: yes (an older replica neither reads it nor must write it:
     * its re-enrollments are recorded as 0, not counted by the newer ones, and it keeps its own
     * bound in memory, per replica, as before) */
    "ALTER TABLE certificates ADD COLUMN reissued INTEGER NOT NULL DEFAULT 0;",
    /* 32: none (a number held in session 30 for a change that needed no migration): a no-op,
     * kept so that the numbers after it stay as they were released */
    "SELECT 1;",
    /* 33 (review r15ops H1): the times `rampart-server backup` took a copy of the database,
     * written into the copy only, so that a restore can say since when the revocations it
     * undoes were made; and the database's generation (store.c: rp_store_generation_raise),
     * raised at each start, backup, restore and revocation and kept in each data directory too
     * (DIR/generation), so that a database older than the one the directory served (a backup put
     * back by hand) is refused at start (server/restore.c; docs/operations.md, "Backing up and
     * restoring"). Rolling upgrade: yes (an older replica neither reads nor raises them: until
     * every replica runs this version, a restore is caught only by those that do) */
    ("CREATE TABLE backups_taken (at INTEGER NOT NULL);"
     "CREATE TABLE restore_generation (n INTEGER NOT NULL);"
     "INSERT INTO restore_generation (n) VALUES (0);"),
    /* 34: the master key's check value (store.c: rp_store_master_check_put; ca.c:
     * rp_ca_master_check): a value derived from the master key, never the key, written once by
     * the first start that finds none, which every start compares with its own key, so that a
     * replica with another key (or one that made its own) refuses to start, even while no tenant
     * has a CA (review r15ops M2). One row at most. Rolling upgrade: yes (an older replica
     * neither reads nor writes it, and keeps its own check of the first tenants' CAs) */
    "CREATE TABLE master_check (id INTEGER PRIMARY KEY CHECK (id = 1), value TEXT NOT NULL);",
    /* 35: the token whose login link made a token (api/console.c: a link naming a tenant makes
     * an admin token), so that revoking a token revokes what its links made, and what those
     * made, in the same statement (ON DELETE CASCADE: review r15web M2); NULL: made otherwise
     * (and every token made before). Rolling upgrade: yes (an older replica makes its links'
     * tokens with NULL, which a revocation leaves alone, as before) */
    ("ALTER TABLE tokens ADD COLUMN made_by TEXT REFERENCES tokens(id) ON DELETE CASCADE;"
     "CREATE INDEX tokens_made_by ON tokens(made_by);"),
};
const int rp_store_schema_newest =
    (int)(sizeof(rp_store_migrations) / sizeof(rp_store_migrations[0]));

/* From version (the database's) to the newest, one migration per transaction. */
static rp_err_t migrate_from(rp_store_t *s, int version)
{
    rp_err_t err;

    if (version > rp_store_schema_newest) {
        rp_log_error("database schema version %d is newer than this server (%d): upgrade it",
                     version, rp_store_schema_newest);
        return RP_ERR_UNSUPPORTED;
    }
    for (int v = version; v < rp_store_schema_newest; v++) {
        char sql[64];
        sq_st_t *st;
        int now = -1;

        err = s->db->drv->begin(s->db);
        if (err != RP_OK)
            return err;
        /* read again under the write lock: another process (a replica starting at the same
         * time) may have run it since */
        st = sq_prepare(s, "SELECT max(version) FROM schema_version");
        if (st != NULL && db_step(st) == DB_ROW)
            now = db_column_int(st, 0);
        sq_finalize(st);
        if (now < 0) {
            (void)s->db->drv->rollback(s->db);
            return sq_error(s, "schema version");
        }
        if (now > v) {
            err = s->db->drv->commit(s->db);
            if (err != RP_OK)
                return err;
            v = now - 1;
            continue;
        }
        err = sq_exec(s, rp_store_migrations[v]);
        snprintf(sql, sizeof(sql), "INSERT INTO schema_version VALUES (%d)", v + 1);
        if (err == RP_OK)
            err = sq_exec(s, sql);
        if (err == RP_OK)
            err = s->db->drv->commit(s->db);
        if (err != RP_OK) {
            (void)s->db->drv->rollback(s->db);
            return err;
        }
        rp_log_info("database migrated to schema version %d", v + 1);
    }
    return RP_OK;
}

rp_err_t sq_migrate(rp_store_t *s)
{
    sq_st_t *st;
    int version = 0, rc;
    rp_err_t err;

    if (sq_engine(s) == SQ_PG) {
        /* PostgreSQL's schema starts at its baseline (schema_pg.c), installed in one step under
         * the write lock; the migrations after it are the ones below, in SQLite's DDL, which the
         * driver maps (db_pg.h). */
        err = rp_schema_pg_install(s->db, &version);
        if (err != RP_OK)
            return err;
        return migrate_from(s, version);
    }
    err = sq_exec(s, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);");
    if (err != RP_OK)
        return err;
    st = sq_prepare(s, "SELECT max(version) FROM schema_version");
    if (st == NULL)
        return RP_ERR_IO;
    rc = db_step(st);
    if (rc == DB_ROW)
        version = db_column_int(st, 0);
    sq_finalize(st);
    if (rc == DB_ERROR)
        return sq_error(s, "schema version");
    return migrate_from(s, version);
}

rp_err_t rp_store_counters_recount(rp_store_t *s)
{
    rp_err_t err = sq_begin(s);

    if (err != RP_OK)
        return err;
    return sq_end(
        s, sq_exec(s, "DELETE FROM device_counts; DELETE FROM deployment_counts;" COUNTERS_SEED
                      "DELETE FROM version_counts;" VERSIONS_SEED DEPLOY_COUNTERS_SEED_25));
}
