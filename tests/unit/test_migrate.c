/*
 * The migration of what an older version kept as JSON (device/agent/update_root.c,
 * rp_update_migrate): the root by its own keys, the targets by the migrated root; the binary file
 * written before the JSON one goes; a leftover JSON file beside a binary one removed; a tampered
 * or malformed one refused, left where it is, and the root then refused (never "none kept").
 * Here the envelope and the payload are read in this process, as a single-process agent reads
 * them (rp_update_migrate_here); the monitor's readers ask rampart-unpack (e2e.agent_state).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "rampart/file.h"
#include "rampart/key.h"
#include "rampart/log.h"
#include "update.h"

#define DEVICE "aa00000000000000000000000000000000000000000000000000000000000000"

static void put(const char *dir, const char *name, const char *text)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_int_equal(rp_write_file_atomic(path, text, strlen(text), 0600, 0), RP_OK);
}

static bool has(const char *dir, const char *name)
{
    char path[512];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return lstat(path, &st) == 0;
}

/* The agent's own copy of the targets holds text, mode 0600, owned by uid. */
static void agent_copy_is(const char *dir, const char *text, uid_t uid)
{
    char path[512];
    uint8_t *data = NULL;
    size_t len = 0;
    struct stat st;

    snprintf(path, sizeof(path), "%s/agent/update/targets.json", dir);
    assert_int_equal(rp_read_file(path, 1 << 20, &data, &len), RP_OK);
    assert_int_equal(len, strlen(text));
    assert_memory_equal(data, text, len);
    free(data);
    assert_int_equal(lstat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_uid, uid);
}

static void migrate(void **state)
{
    EVP_PKEY *root_key = NULL, *online = NULL, *image = NULL, *rogue = NULL;
    char dir[] = "/tmp/test_migrate.XXXXXX", sub[64], detail[256], *root_env = NULL, *forged = NULL,
         *targets_env = NULL;
    rp_md_root_t r, *kept = calloc(1, sizeof(*kept));
    rp_md_targets_t *t = calloc(1, sizeof(*t));

    (void)state;
    rp_log_init("test_migrate", RP_LOG_ERROR);
    assert_non_null(kept);
    assert_non_null(t);
    assert_int_equal(rp_key_generate(RP_SIG_ECDSA_P256, &root_key), RP_OK);
    assert_int_equal(rp_key_generate(RP_SIG_ECDSA_P256, &online), RP_OK);
    assert_int_equal(rp_key_generate(RP_SIG_ECDSA_P256, &image), RP_OK);
    assert_int_equal(rp_key_generate(RP_SIG_ECDSA_P256, &rogue), RP_OK);
    memset(&r, 0, sizeof(r));
    strcpy(r.tenant, "t_1");
    r.version = 1;
    r.expires = (int64_t)time(NULL) - 60; /* expired: what was kept is read whatever its age */
    {
        EVP_PKEY *key[] = {root_key, online, image};
        rp_md_role_t *role[] = {&r.root, &r.online, &r.images};
        for (int i = 0; i < 3; i++) {
            role[i]->nkeys = role[i]->threshold = 1;
            assert_int_equal(rp_key_spki(key[i], role[i]->spki[0], sizeof(role[i]->spki[0]),
                                         &role[i]->spki_len[0]),
                             RP_OK);
        }
    }
    assert_int_equal(rp_md_root_sign(&r, &root_key, 1, &root_env, detail, sizeof(detail)), RP_OK);
    assert_int_equal(rp_md_root_sign(&r, &rogue, 1, &forged, detail, sizeof(detail)), RP_OK);
    strcpy(t->tenant, "t_1");
    strcpy(t->device, DEVICE);
    t->version = 3;
    t->expires = (int64_t)time(NULL) + 3600;
    assert_int_equal(rp_md_targets_sign(t, online, &targets_env, detail, sizeof(detail)), RP_OK);
    assert_non_null(mkdtemp(dir));
    snprintf(sub, sizeof(sub), "%s/update", dir);
    assert_int_equal(mkdir(sub, 0755), 0);

    /* nothing kept: nothing to do */
    assert_int_equal(rp_update_migrate(dir, DEVICE, &rp_update_migrate_here), RP_OK);
    assert_int_equal(rp_update_root(dir, kept), RP_ERR_NOT_FOUND);

    /* a forged root: refused, left where it is, and the root is refused, never "none kept"; the
     * targets wait */
    put(dir, "update/root.json", forged);
    put(dir, "update/targets.json", targets_env);
    assert_int_not_equal(rp_update_migrate(dir, DEVICE, &rp_update_migrate_here), RP_OK);
    assert_true(has(dir, "update/root.json") && !has(dir, "update/root.bin"));
    assert_true(has(dir, "update/targets.json") && !has(dir, "update/targets.bin"));
    assert_int_equal(rp_update_root(dir, kept), RP_ERR_MALFORMED);
    /* not an envelope at all: the same */
    put(dir, "update/root.json", "{\"signed\": 1");
    assert_int_not_equal(rp_update_migrate(dir, DEVICE, &rp_update_migrate_here), RP_OK);
    assert_true(has(dir, "update/root.json") && !has(dir, "update/root.bin"));

    assert_false(has(dir, "agent/update/targets.json")); /* nor is the agent's copy made */

    /* the root the older version kept, and its targets: migrated, the JSON files gone; a state
     * directory from before S/agent/ kept the agent's own copy there too: it stays the agent's,
     * at S/agent/update/targets.json, owned as S/agent/ is (as root: another user's) */
    snprintf(sub, sizeof(sub), "%s/agent", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    if (geteuid() == 0)
        assert_int_equal(chown(sub, 65534, 65534), 0);
    put(dir, "update/root.json", root_env);
    assert_int_equal(rp_update_migrate(dir, DEVICE, &rp_update_migrate_here), RP_OK);
    assert_true(!has(dir, "update/root.json") && has(dir, "update/root.bin"));
    assert_true(!has(dir, "update/targets.json") && has(dir, "update/targets.bin"));
    agent_copy_is(dir, targets_env, geteuid() == 0 ? 65534 : geteuid());
    /* a cut after that copy, before the targets were migrated: the copy stands, never made again
     * (a newer one the agent wrote wins), and the migration goes on */
    snprintf(sub, sizeof(sub), "%s/update/targets.bin", dir);
    assert_int_equal(unlink(sub), 0);
    put(dir, "update/targets.json", targets_env);
    put(dir, "agent/update/targets.json", "newer");
    if (geteuid() == 0) {
        snprintf(sub, sizeof(sub), "%s/agent/update/targets.json", dir);
        assert_int_equal(chown(sub, 65534, 65534), 0);
    }
    assert_int_equal(rp_update_migrate(dir, DEVICE, &rp_update_migrate_here), RP_OK);
    assert_true(!has(dir, "update/targets.json") && has(dir, "update/targets.bin"));
    agent_copy_is(dir, "newer", geteuid() == 0 ? 65534 : geteuid());
    assert_int_equal(rp_update_root(dir, kept), RP_OK);
    assert_int_equal(kept->version, 1);
    snprintf(sub, sizeof(sub), "%s/update/targets.bin", dir);
    assert_int_equal(rp_update_kept_targets(sub, DEVICE, kept, true, t, detail, sizeof(detail)),
                     RP_OK);
    assert_int_equal(t->version, 3);

    /* a cut after the rename: both there; the binary one counts, the JSON one goes (even a
     * forged one: it is never read again) */
    put(dir, "update/root.json", forged);
    assert_int_equal(rp_update_migrate(dir, DEVICE, &rp_update_migrate_here), RP_OK);
    assert_false(has(dir, "update/root.json"));
    assert_int_equal(rp_update_root(dir, kept), RP_OK);

    /* targets for another device: refused, left, and TARGETS refused while they stay */
    unlink(sub);
    t->device[0] = 'b';
    free(targets_env);
    assert_int_equal(rp_md_targets_sign(t, online, &targets_env, detail, sizeof(detail)), RP_OK);
    put(dir, "update/targets.json", targets_env);
    assert_int_not_equal(rp_update_migrate(dir, DEVICE, &rp_update_migrate_here), RP_OK);
    assert_true(has(dir, "update/targets.json") && !has(dir, "update/targets.bin"));

    snprintf(sub, sizeof(sub), "rm -rf %s", dir);
    assert_int_equal(system(sub), 0);
    free(root_env);
    free(forged);
    free(targets_env);
    free(kept);
    free(t);
    EVP_PKEY_free(root_key);
    EVP_PKEY_free(online);
    EVP_PKEY_free(image);
    EVP_PKEY_free(rogue);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(migrate),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
