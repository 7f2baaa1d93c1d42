/*
 * The root of trust, both backends: provisioning keeps an identity, the device ID is the hash of
 * the public key, signatures verify, counters (boot and security) only go up and persist,
 * measurements chain as a PCR does. The tpm2 backend runs against a real swtpm started by the test.
 */
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/err.h>

#include "rampart/file.h"
#include "rampart/log.h"
#include "rampart/rot.h"
#include "swtpm.h"

static tu_swtpm_t tpm;

static int setup(void **state)
{
    (void)state;
    rp_log_init("test_rot", RP_LOG_ERROR);
    return tu_swtpm_start(&tpm);
}

static int teardown(void **state)
{
    (void)state;
    tu_swtpm_stop(&tpm);
    return 0;
}

static void fresh_dir(char *dir, size_t cap)
{
    snprintf(dir, cap, "/tmp/rampart-rot-XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static void rm_dir(const char *dir)
{
    char cmd[256];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static rp_rot_config_t config(rp_rot_kind_t kind, const char *dir)
{
    rp_rot_config_t c = {
        .kind = kind, .state_dir = dir, .tcti = kind == RP_ROT_TPM2 ? tpm.tcti : NULL};
    return c;
}

/* Everything both backends must do the same way. */
static void check_backend(rp_rot_kind_t kind)
{
    char dir[64], id[RP_DEVICE_ID_SIZE], id2[RP_DEVICE_ID_SIZE], expect[RP_DEVICE_ID_SIZE];
    uint8_t spki[RP_PUBKEY_DER_MAX], digest[RP_SHA256_LEN], sig[80], reg[RP_SHA256_LEN];
    uint8_t chain[2 * RP_SHA256_LEN], want[RP_SHA256_LEN], mac_before[RP_SHA256_LEN];
    size_t spki_len, sig_len;
    uint64_t v0, v;
    rp_rot_config_t cfg;
    rp_rot_t *rot;
    bool created;

    fresh_dir(dir, sizeof(dir));
    cfg = config(kind, dir);
    assert_int_equal(rp_rot_open(&cfg, &rot), RP_ERR_NOT_FOUND); /* not provisioned */
    assert_int_equal(rp_rot_provision(&cfg, &created), RP_OK);
    assert_true(created);
    assert_int_equal(rp_rot_open(&cfg, &rot), RP_OK);
    assert_int_equal(rp_rot_kind(rot), kind);

    /* The device ID is the lowercase hex SHA-256 of the DER SubjectPublicKeyInfo. */
    assert_int_equal(rp_rot_public_key(rot, spki, sizeof(spki), &spki_len), RP_OK);
    assert_int_equal(rp_rot_device_id(rot, id), RP_OK);
    assert_int_equal(rp_device_id_of_spki(spki, spki_len, expect), RP_OK);
    assert_string_equal(id, expect);
    assert_true(rp_device_id_valid(id));

    /* Signatures by the identity key verify with its public key (and the core's verifier). */
    assert_int_equal(rp_sha256("attest me", 9, digest), RP_OK);
    assert_int_equal(rp_rot_sign(rot, digest, sig, sizeof(sig), &sig_len), RP_OK);
    assert_int_equal(rp_sig_verify(RP_SIG_ECDSA_P256, spki, spki_len, digest, sig, sig_len), RP_OK);
    digest[0] ^= 1;
    assert_int_equal(rp_sig_verify(RP_SIG_ECDSA_P256, spki, spki_len, digest, sig, sig_len),
                     RP_ERR_BAD_SIGNATURE);

    /* Counters go up by one and persist. */
    assert_int_equal(rp_rot_counter_read(rot, RP_ROT_COUNTER_BOOT, &v0), RP_OK);
    assert_int_equal(rp_rot_counter_increment(rot, RP_ROT_COUNTER_BOOT, &v), RP_OK);
    assert_true(v == v0 + 1);
    assert_int_equal(rp_rot_counter_increment(rot, RP_ROT_COUNTER_BOOT, &v), RP_OK);
    assert_true(v == v0 + 2);

    /* Security counters start at 0, only rise, and each is its own. */
    {
        uint32_t sc, max = rp_rot_seccnt_max(rot);
        assert_int_equal(rp_rot_seccnt_read(rot, 3, &sc), RP_OK);
        assert_int_equal(sc, 0);
        assert_int_equal(rp_rot_seccnt_advance(rot, 3, 5), RP_OK);
        assert_int_equal(rp_rot_seccnt_advance(rot, 3, 2), RP_OK); /* a no-op: never lowers */
        assert_int_equal(rp_rot_seccnt_read(rot, 3, &sc), RP_OK);
        assert_int_equal(sc, 5);
        assert_int_equal(rp_rot_seccnt_advance(rot, 3, max), RP_OK);
        assert_int_equal(rp_rot_seccnt_read(rot, 3, &sc), RP_OK);
        assert_int_equal(sc, max);
        assert_int_equal(rp_rot_seccnt_read(rot, 4, &sc), RP_OK);
        assert_int_equal(sc, 0);
        assert_int_equal(rp_rot_seccnt_advance(rot, RP_ROT_SECCNT_COUNT, 1), RP_ERR_INVALID_ARG);
        if (max < UINT32_MAX)
            assert_int_equal(rp_rot_seccnt_advance(rot, 4, max + 1), RP_ERR_TOO_LARGE);
    }

    /* Measurements chain: reg' = SHA-256(reg || digest). */
    assert_int_equal(rp_rot_measurements(rot, chain), RP_OK);
    assert_int_equal(rp_sha256("component", 9, chain + RP_SHA256_LEN), RP_OK);
    assert_int_equal(rp_rot_measure(rot, chain + RP_SHA256_LEN, reg), RP_OK);
    assert_int_equal(rp_sha256(chain, sizeof(chain), want), RP_OK);
    assert_memory_equal(reg, want, RP_SHA256_LEN);
    assert_int_equal(rp_rot_measurements(rot, chain), RP_OK);
    assert_memory_equal(chain, want, RP_SHA256_LEN);

    /* The MAC: keyed (not a plain hash), the same on every call, different for other data. */
    {
        uint8_t m1[RP_SHA256_LEN], m2[RP_SHA256_LEN], plain[RP_SHA256_LEN];
        assert_int_equal(rp_rot_mac(rot, "binding", 7, m1), RP_OK);
        assert_int_equal(rp_rot_mac(rot, "binding", 7, m2), RP_OK);
        assert_memory_equal(m1, m2, RP_SHA256_LEN);
        assert_int_equal(rp_sha256("binding", 7, plain), RP_OK);
        assert_memory_not_equal(m1, plain, RP_SHA256_LEN);
        assert_int_equal(rp_rot_mac(rot, "bindinG", 7, m2), RP_OK);
        assert_memory_not_equal(m1, m2, RP_SHA256_LEN);
        assert_int_equal(rp_rot_mac(rot, m1, RP_ROT_MAC_DATA_MAX + 1, m2), RP_ERR_INVALID_ARG);
        memcpy(mac_before, m1, RP_SHA256_LEN);
    }

    /* The key is usable again after those operations (the tpm2 backend reconnects). */
    assert_non_null(rp_rot_pkey(rot));
    assert_int_equal(rp_rot_sign(rot, digest, sig, sizeof(sig), &sig_len), RP_OK);
    assert_int_equal(rp_sig_verify(RP_SIG_ECDSA_P256, spki, spki_len, digest, sig, sig_len), RP_OK);
    rp_rot_close(rot);

    /* Provisioning again keeps the identity; the counter kept its value; the MAC key is kept. */
    assert_int_equal(rp_rot_provision(&cfg, &created), RP_OK);
    assert_false(created);
    assert_int_equal(rp_rot_open(&cfg, &rot), RP_OK);
    assert_int_equal(rp_rot_device_id(rot, id2), RP_OK);
    assert_string_equal(id, id2);
    assert_int_equal(rp_rot_counter_read(rot, RP_ROT_COUNTER_BOOT, &v), RP_OK);
    assert_true(v == v0 + 2);
    {
        uint32_t sc;
        assert_int_equal(rp_rot_seccnt_read(rot, 3, &sc), RP_OK);
        assert_int_equal(sc, rp_rot_seccnt_max(rot)); /* kept across opens */
    }
    {
        uint8_t m[RP_SHA256_LEN];
        assert_int_equal(rp_rot_mac(rot, "binding", 7, m), RP_OK);
        assert_memory_equal(m, mac_before, RP_SHA256_LEN);
    }
    rp_rot_close(rot);

    /* The directory holds one kind of root of trust. */
    cfg = config(kind == RP_ROT_SOFT ? RP_ROT_TPM2 : RP_ROT_SOFT, dir);
    assert_int_equal(rp_rot_provision(&cfg, &created), RP_ERR_EXISTS);
    assert_int_not_equal(rp_rot_open(&cfg, &rot), RP_OK);
    rm_dir(dir);
}

static void test_soft(void **state)
{
    char dir[64], path[128];
    rp_rot_config_t cfg;
    struct stat st;
    bool created;

    (void)state;
    check_backend(RP_ROT_SOFT);
    fresh_dir(dir, sizeof(dir));
    cfg = config(RP_ROT_SOFT, dir);
    assert_int_equal(rp_rot_provision(&cfg, &created), RP_OK);
    snprintf(path, sizeof(path), "%s/identity.pem", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* The MAC key is made on first use, 0600; a key others may read is refused. */
    {
        uint8_t m[RP_SHA256_LEN];
        rp_rot_t *rot;
        assert_int_equal(rp_rot_open(&cfg, &rot), RP_OK);
        assert_int_equal(rp_rot_mac(rot, "x", 1, m), RP_OK);
        snprintf(path, sizeof(path), "%s/mac.key", dir);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(chmod(path, 0644), 0);
        assert_int_not_equal(rp_rot_mac(rot, "x", 1, m), RP_OK);
        rp_rot_close(rot);
    }
    rm_dir(dir);
}

static void test_soft_boot_resets_register(void **state)
{
    uint8_t d[RP_SHA256_LEN] = {1}, reg[RP_SHA256_LEN], zero[RP_SHA256_LEN] = {0};
    char dir[64];
    rp_rot_config_t cfg;
    rp_rot_t *rot;
    bool created;

    (void)state;
    fresh_dir(dir, sizeof(dir));
    cfg = config(RP_ROT_SOFT, dir);
    assert_int_equal(rp_rot_provision(&cfg, &created), RP_OK);
    assert_int_equal(rp_rot_open(&cfg, &rot), RP_OK);
    assert_int_equal(rp_rot_measure(rot, d, reg), RP_OK);
    assert_memory_not_equal(reg, zero, sizeof(reg));
    assert_int_equal(rp_rot_counter_increment(rot, RP_ROT_COUNTER_BOOT, NULL), RP_OK);
    assert_int_equal(rp_rot_measurements(rot, reg), RP_OK);
    assert_memory_equal(reg, zero, sizeof(reg));
    rp_rot_close(rot);
    rm_dir(dir);
}

static void test_tpm2(void **state)
{
    (void)state;
    check_backend(RP_ROT_TPM2);
}

static void test_tpm2_key_never_leaves(void **state)
{
    char dir[64], path[128];
    rp_rot_config_t cfg;
    rp_rot_t *rot;
    uint8_t *data;
    size_t len;
    BIGNUM *priv = NULL;
    bool created;

    (void)state;
    fresh_dir(dir, sizeof(dir));
    cfg = config(RP_ROT_TPM2, dir);
    assert_int_equal(rp_rot_provision(&cfg, &created), RP_OK);
    /* On disk: only the TPM-wrapped blob. */
    snprintf(path, sizeof(path), "%s/identity.tss2", dir);
    assert_int_equal(rp_read_file(path, 8192, &data, &len), RP_OK);
    assert_non_null(strstr((char *)data, "-----BEGIN TSS2 PRIVATE KEY-----"));
    assert_null(strstr((char *)data, "-----BEGIN PRIVATE KEY-----"));
    free(data);
    /* Through OpenSSL: the private scalar cannot be read out. */
    assert_int_equal(rp_rot_open(&cfg, &rot), RP_OK);
    assert_int_equal(EVP_PKEY_get_bn_param(rp_rot_pkey(rot), OSSL_PKEY_PARAM_PRIV_KEY, &priv), 0);
    assert_null(priv);
    ERR_clear_error();
    rp_rot_close(rot);
    /* Another TPM cannot use the blob. */
    {
        tu_swtpm_t other;
        rp_rot_config_t ocfg = {.kind = RP_ROT_TPM2, .state_dir = dir};
        uint8_t digest[RP_SHA256_LEN] = {0}, sig[80];
        size_t sig_len;

        assert_int_equal(tu_swtpm_start(&other), 0);
        ocfg.tcti = other.tcti;
        if (rp_rot_open(&ocfg, &rot) == RP_OK) {
            assert_int_not_equal(rp_rot_sign(rot, digest, sig, sizeof(sig), &sig_len), RP_OK);
            rp_rot_close(rot);
        }
        tu_swtpm_stop(&other);
    }
    rm_dir(dir);
}

/* A provisioned tpm2 root of trust in a fresh directory (dir: 64 bytes), opened. */
static rp_rot_t *tpm2_fresh(char *dir)
{
    rp_rot_config_t cfg;
    rp_rot_t *rot;
    bool created;

    fresh_dir(dir, 64);
    cfg = config(RP_ROT_TPM2, dir);
    assert_int_equal(rp_rot_provision(&cfg, &created), RP_OK);
    assert_int_equal(rp_rot_open(&cfg, &rot), RP_OK);
    return rot;
}

/* Run fn(rot) in a forked child (its exit status: fn's answer); OUT: the child's wait status. */
static int in_child(rp_rot_t *rot, int (*fn)(rp_rot_t *))
{
    int status;
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fn(rot));
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static const uint8_t child_digest[RP_SHA256_LEN] = {1};

/* What an install child does with the root of trust: the gate's signatures, then it closes it. */
static int child_sign_close(rp_rot_t *rot)
{
    uint8_t sig[80];
    size_t len;
    rp_err_t err = rp_rot_sign(rot, child_digest, sig, sizeof(sig), &len);

    rp_rot_close(rot);
    return err == RP_OK ? 0 : 1;
}

/* ...the counter binding's MAC and a security counter, without closing it. */
static int child_mac_counter(rp_rot_t *rot)
{
    uint8_t mac[RP_SHA256_LEN];
    uint32_t floor;

    return rp_rot_mac(rot, "binding", 7, mac) == RP_OK &&
                   rp_rot_seccnt_read(rot, 0, &floor) == RP_OK
               ? 0
               : 1;
}

/* ...killed (at the monitor's stop) with the key loaded. */
static int child_sign_killed(rp_rot_t *rot)
{
    uint8_t sig[80];
    size_t len;

    if (rp_rot_sign(rot, child_digest, sig, sizeof(sig), &len) == RP_OK)
        raise(SIGKILL);
    return 1;
}

/*
 * A forked child (the monitor's install child) that uses the TPM leaves its parent's connection
 * and loaded key alone: the parent signs on afterwards. The child's MAC and counter read go
 * through a connection of its own; releasing its copy of the parent's flushed the parent's key
 * from the TPM, and the parent's next signature failed. Children that sign load the key
 * themselves and close the root of trust before they exit: a TPM without a resource manager, as
 * swtpm, keeps what a process loaded after it, and the second child could not load the key
 * (TPM_RC_OBJECT_MEMORY).
 */
static void test_tpm2_fork_leaves_parent_key(void **state)
{
    char dir[64];
    uint8_t spki[RP_PUBKEY_DER_MAX], sig[80];
    size_t spki_len, sig_len;
    rp_rot_t *rot = tpm2_fresh(dir);
    int status;

    (void)state;
    assert_int_equal(rp_rot_public_key(rot, spki, sizeof(spki), &spki_len), RP_OK);
    assert_int_equal(rp_rot_sign(rot, child_digest, sig, sizeof(sig), &sig_len),
                     RP_OK); /* loaded */
    for (int k = 0; k < 4; k++) {
        status = in_child(rot, child_sign_close);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    status = in_child(rot, child_mac_counter);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(rp_rot_sign(rot, child_digest, sig, sizeof(sig), &sig_len), RP_OK);
    assert_int_equal(rp_sig_verify(RP_SIG_ECDSA_P256, spki, spki_len, child_digest, sig, sig_len),
                     RP_OK);
    rp_rot_close(rot);
    rm_dir(dir);
}

/*
 * Children killed with the key loaded leave it in a TPM without a resource manager (swtpm): with
 * two, no key could be loaded again (TPM_RC_OBJECT_MEMORY), until rp_rot_reclaim() flushed what
 * they left.
 */
static void test_tpm2_reclaim_after_killed_children(void **state)
{
    char dir[64];
    uint8_t sig[80];
    size_t sig_len;
    uint64_t boots;
    rp_rot_t *rot = tpm2_fresh(dir);
    int status;

    (void)state;
    for (int k = 0; k < 3; k++) {
        status = in_child(rot, child_sign_killed);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        assert_int_equal(rp_rot_reclaim(rot), RP_OK);
        /* the parent's own key is loaded again (a counter read released it) */
        assert_int_equal(rp_rot_counter_read(rot, RP_ROT_COUNTER_BOOT, &boots), RP_OK);
        assert_int_equal(rp_rot_sign(rot, child_digest, sig, sizeof(sig), &sig_len), RP_OK);
    }
    rp_rot_close(rot);
    rm_dir(dir);
}

/* The cmd TCTI through tpm-pipe (TPM_PIPE): a TPM connection that stays open as long as whoever
 * made it (or a copy of its descriptors) holds it, and swtpm serves one at a time: /dev/tpm0's
 * rule, which the swtpm TCTI (a connection per command) hides. */
static void one_connection_tcti(char *tcti, size_t cap)
{
    const char *pipe = getenv("TPM_PIPE");

    assert_non_null(pipe);
    assert_true(snprintf(tcti, cap, "cmd:%s %d", pipe, tpm.port) < (int)cap);
}

/* ...signs and reads a counter, through connections of its own (bounded: a TPM kept busy by a
 * copy of the parent's connection never answers it). */
static int child_sign_counter(rp_rot_t *rot)
{
    uint8_t sig[80];
    size_t len;
    uint64_t boots;

    alarm(60);
    if (rp_rot_sign(rot, child_digest, sig, sizeof(sig), &len) != RP_OK ||
        rp_rot_counter_read(rot, RP_ROT_COUNTER_BOOT, &boots) != RP_OK)
        return 1;
    rp_rot_close(rot);
    return 0;
}

/*
 * A TPM that serves one connection at a time (/dev/tpm0; here swtpm through tpm-pipe): the parent
 * holds its connection while its key is loaded. Letting go of it before the fork (rp_rot_idle, as
 * the monitor does before its install child) leaves the TPM to the child, which signs and reads a
 * counter; the parent signs again after it. Without the idle, the child's copy of the parent's
 * connection kept the TPM busy and the child waited until its alarm.
 */
static void test_tpm2_idle_before_fork_one_connection(void **state)
{
    char dir[64], tcti[PATH_MAX + 16];
    uint8_t spki[RP_PUBKEY_DER_MAX], sig[80];
    size_t spki_len, sig_len;
    uint64_t boots;
    rp_rot_config_t cfg;
    rp_rot_t *rot;
    bool created;
    int status;

    (void)state;
    fresh_dir(dir, sizeof(dir));
    one_connection_tcti(tcti, sizeof(tcti));
    cfg = config(RP_ROT_TPM2, dir);
    cfg.tcti = tcti;
    assert_int_equal(rp_rot_provision(&cfg, &created), RP_OK);
    assert_int_equal(rp_rot_open(&cfg, &rot), RP_OK);
    assert_int_equal(rp_rot_public_key(rot, spki, sizeof(spki), &spki_len), RP_OK);
    /* one connection at a time within the process too: the counter's after the key's */
    assert_int_equal(rp_rot_sign(rot, child_digest, sig, sizeof(sig), &sig_len), RP_OK);
    assert_int_equal(rp_rot_counter_read(rot, RP_ROT_COUNTER_BOOT, &boots), RP_OK);
    assert_int_equal(rp_rot_sign(rot, child_digest, sig, sizeof(sig), &sig_len), RP_OK); /* held */
    for (int k = 0; k < 2; k++) {
        rp_rot_idle(rot);
        status = in_child(rot, child_sign_counter);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        assert_int_equal(rp_rot_sign(rot, child_digest, sig, sizeof(sig), &sig_len), RP_OK);
        assert_int_equal(
            rp_sig_verify(RP_SIG_ECDSA_P256, spki, spki_len, child_digest, sig, sig_len), RP_OK);
    }
    rp_rot_close(rot);
    rm_dir(dir);
}

static rp_rot_config_t killed_cfg; /* what child_open_sign_killed opens */

/* A process of its own (a monitor) opens the root of trust, signs and is killed with its key
 * loaded; one that cannot open exits with rp_rot_open's answer, its log in the file on fd 2. */
static int child_open_sign_killed(rp_rot_t *unused)
{
    uint8_t sig[80];
    size_t len;
    rp_rot_t *rot;
    rp_err_t err = rp_rot_open(&killed_cfg, &rot);

    (void)unused;
    if (err != RP_OK)
        return (int)err;
    if (rp_rot_sign(rot, child_digest, sig, sizeof(sig), &len) == RP_OK)
        raise(SIGKILL);
    return 100;
}

/*
 * Monitors killed with their key loaded (kill -9, OOM, the watchdog) leave it in a TPM without a
 * resource manager (swtpm), which then has no room to load it: a fresh process cannot open the
 * root of trust, and says so (not that the key file is corrupt, which would send an operator to
 * provision a new identity). The TPM's one user (sole_user: the monitor as it starts) flushes what
 * they left and opens it.
 */
static void test_tpm2_killed_monitors_then_sole_user_opens(void **state)
{
    char dir[64], log[] = "/tmp/rampart-rot-log-XXXXXX";
    uint8_t sig[80], *said;
    size_t sig_len, said_len;
    rp_rot_t *rot;
    bool created;
    int status = 0, killed = 0, fd = mkstemp(log), saved = dup(STDERR_FILENO);

    (void)state;
    assert_true(fd >= 0 && saved >= 0);
    fresh_dir(dir, sizeof(dir));
    killed_cfg = config(RP_ROT_TPM2, dir);
    assert_int_equal(rp_rot_provision(&killed_cfg, &created), RP_OK);
    /* (the children's log goes to the file) */
    assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    for (; killed < 8; killed++) {
        assert_int_equal(ftruncate(fd, 0), 0);
        status = in_child(NULL, child_open_sign_killed);
        if (!WIFSIGNALED(status))
            break;
        assert_int_equal(WTERMSIG(status), SIGKILL);
    }
    assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    close(fd);
    assert_true(killed >= 1 && killed < 8); /* swtpm: three objects, two loaded by the dead */
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == RP_ERR_NO_MEMORY);
    assert_int_equal(rp_read_file(log, 8192, &said, &said_len), RP_OK);
    assert_non_null(strstr((char *)said, "the TPM has no room to load the identity key"));
    assert_non_null(strstr((char *)said, "not at fault: do not provision again"));
    assert_null(strstr((char *)said, "corrupt"));
    free(said);
    unlink(log);
    /* The monitor's start: what the dead left is flushed, the key loads and signs. */
    killed_cfg.sole_user = true;
    assert_int_equal(rp_rot_open(&killed_cfg, &rot), RP_OK);
    assert_int_equal(rp_rot_sign(rot, child_digest, sig, sizeof(sig), &sig_len), RP_OK);
    rp_rot_close(rot);
    rm_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_soft),
        cmocka_unit_test(test_soft_boot_resets_register),
        cmocka_unit_test(test_tpm2),
        cmocka_unit_test(test_tpm2_key_never_leaves),
        cmocka_unit_test(test_tpm2_fork_leaves_parent_key),
        cmocka_unit_test(test_tpm2_reclaim_after_killed_children),
        cmocka_unit_test(test_tpm2_idle_before_fork_one_connection),
        cmocka_unit_test(test_tpm2_killed_monitors_then_sole_user_opens),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
