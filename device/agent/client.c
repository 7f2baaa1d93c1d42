/*
 * The agent's side of rampart-monitor, and its network side: the mode choice (a monitor serves S,
 * or root works alone, or a refusal), requests to the monitor, the identity key as a remote TLS
 * 1.3 key signed by the monitor, and attestation with the service. Nothing here is linked into the
 * monitor (it links agent.c for measurement and evidence): `make size` counts what it links.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "agent.h"
#include "reportq.h"
#include "rampart/base64.h"
#include "rampart/cert_time.h"
#include "rampart/file.h"
#include "rampart/hex.h"
#include "rampart/http_client.h"
#include "rampart/key.h"
#include "rampart/log.h"
#include "rampart/remote_key.h"

/* ---- the mode choice ---- */

static rp_err_t monitor_path(const char *state_dir, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/monitor.sock", state_dir);

    return n < 0 || (size_t)n >= cap ? RP_ERR_INVALID_ARG : RP_OK;
}

/*
 * The agent's calls to the monitor end when the agent is stopped (rp_agent_monitor_stop, from its
 * signal handler): an INSTALL's answer comes only after its trial, up to its health window, and is
 * not awaited (rp_mon_stop_t).
 */
static rp_mon_stop_t call_stop = {.sock = -1, .tick = rp_agent_wait_tick};

void rp_agent_monitor_stop(void)
{
    rp_mon_call_stop(&call_stop);
}

bool rp_agent_monitor_serves(const char *state_dir)
{
    rp_mon_request_t q = {.type = RP_MON_HELLO, .id = 1};
    static rp_mon_reply_t r;
    char sock[108];

    q.u.hello.min_version = q.u.hello.max_version = RP_MON_VERSION;
    return monitor_path(state_dir, sock, sizeof(sock)) == RP_OK && access(sock, F_OK) == 0 &&
           rp_mon_call_fd(sock, &q, -1, &r, NULL, &call_stop) == RP_OK && r.status == RP_OK;
}

rp_err_t rp_agent_monitor_call(const rp_agent_t *a, rp_mon_request_t *q, int fd, rp_mon_reply_t *r)
{
    return rp_agent_monitor_call_fd(a, q, fd, r, NULL);
}

/* One call, ended by stop when it is not NULL. */
static rp_err_t call(const rp_agent_t *a, rp_mon_request_t *q, int fd, rp_mon_reply_t *r,
                     int *reply_fd, rp_mon_stop_t *stop)
{
    static uint32_t id;
    rp_err_t err;

    if (reply_fd != NULL)
        *reply_fd = -1;
    q->id = ++id;
    err = rp_mon_call_fd(a->monitor, q, fd, r, reply_fd, stop);
    if (stop != NULL && stop->stopped) {
        rp_log_warn("stopping: the monitor's answer to %s is not awaited (the monitor finishes "
                    "it or rolls it back on its own: docs/monitor.md)",
                    rp_mon_type_name(q->type));
        return RP_ERR_IO;
    }
    if (err != RP_OK) {
        rp_log_error("%s: the monitor did not answer: %s", a->monitor, rp_strerror(err));
        return RP_ERR_IO;
    }
    if (r->status != RP_OK) {
        rp_log_error("the monitor refused: %s", r->message);
        if (reply_fd != NULL && *reply_fd >= 0) {
            close(*reply_fd);
            *reply_fd = -1;
        }
        return RP_ERR_IO;
    }
    return RP_OK;
}

rp_err_t rp_agent_monitor_call_fd(const rp_agent_t *a, rp_mon_request_t *q, int fd,
                                  rp_mon_reply_t *r, int *reply_fd)
{
    return call(a, q, fd, r, reply_fd, &call_stop);
}

rp_err_t rp_agent_monitor_call_past_stop(const rp_agent_t *a, rp_mon_request_t *q,
                                         rp_mon_reply_t *r)
{
    return call(a, q, -1, r, NULL, NULL);
}

/* The device certificate's start or end (rp_cert_time's: 0 when there is none, or it cannot be
 * read). Here, not in agent.c, which the monitor links. */
static int64_t device_cert_time(const rp_agent_t *a, bool end)
{
    char path[PATH_MAX + 16], why[64];
    X509 *cert = rp_agent_read_cert(a, "device.crt", path, sizeof(path), why, sizeof(why));
    int64_t t =
        cert == NULL ? 0 : rp_cert_time(end ? X509_get0_notAfter(cert) : X509_get0_notBefore(cert));

    if (cert == NULL && end && access(path, F_OK) == 0)
        rp_log_error("%s is corrupt (%s): attesting now replaces it", path, why);
    X509_free(cert);
    ERR_clear_error();
    return t;
}

int64_t rp_agent_cert_not_after(const rp_agent_t *a)
{
    return device_cert_time(a, true);
}

int64_t rp_agent_cert_not_before(const rp_agent_t *a)
{
    return device_cert_time(a, false);
}

/* The monitor's ID answer: the device ID must be its key's hash, or it is not believed. */
static rp_err_t attach_monitor(rp_agent_t *a)
{
    static rp_mon_reply_t r;
    rp_mon_request_t q = {.type = RP_MON_ID};
    const uint8_t *p;
    char id[RP_DEVICE_ID_SIZE];
    rp_err_t err = rp_agent_monitor_call(a, &q, -1, &r);

    if (err != RP_OK)
        return err;
    p = r.u.id.spki;
    a->pub = d2i_PUBKEY(NULL, &p, (long)r.u.id.spki_len);
    if (a->pub == NULL || rp_device_id_of_spki(r.u.id.spki, r.u.id.spki_len, id) != RP_OK ||
        strcmp(id, r.u.id.device_id) != 0) {
        rp_log_error("the monitor's answer is not a device ID and its key");
        ERR_clear_error();
        return RP_ERR_MALFORMED;
    }
    memcpy(a->device_id, id, sizeof(id));
    a->kind = (rp_rot_kind_t)r.u.id.rot_kind;
    return RP_OK;
}

rp_err_t rp_agent_attach(rp_agent_t *a, const char *state_dir, const char *tcti)
{
    static bool said;
    struct passwd *pw;
    rp_err_t err;

    memset(a, 0, sizeof(*a));
    if (strlen(state_dir) >= sizeof(a->state_dir) ||
        monitor_path(state_dir, a->monitor, sizeof(a->monitor)) != RP_OK)
        return RP_ERR_INVALID_ARG;
    strcpy(a->state_dir, state_dir);
    if (rp_agent_monitor_serves(state_dir)) {
        err = attach_monitor(a);
        if (err != RP_OK)
            rp_agent_close(a);
        return err;
    }
    a->monitor[0] = '\0';
    if (geteuid() != 0) {
        pw = getpwuid(geteuid());
        rp_log_error("no rampart-monitor serves %s: start it with rampart-monitor --state-dir %s "
                     "--agent-user %s",
                     state_dir, state_dir, pw != NULL ? pw->pw_name : "USER");
        return RP_ERR_NOT_FOUND;
    }
    if (!said)
        rp_log_info("no rampart-monitor serves %s: single-process mode (for development): the "
                    "agent opens the root of trust and the slots itself",
                    state_dir);
    said = true;
    err = rp_agent_open(a, state_dir, tcti, false);
    if (err == RP_OK)
        a->kind = rp_rot_kind(a->rot);
    return err;
}

rp_err_t rp_agent_attach_records(rp_agent_t *a, const char *state_dir)
{
    memset(a, 0, sizeof(*a));
    if (strlen(state_dir) >= sizeof(a->state_dir) ||
        monitor_path(state_dir, a->monitor, sizeof(a->monitor)) != RP_OK)
        return RP_ERR_INVALID_ARG;
    strcpy(a->state_dir, state_dir);
    if (!rp_agent_monitor_serves(state_dir))
        a->monitor[0] = '\0';
    return RP_OK;
}

rp_err_t rp_agent_become_agent_user(const rp_agent_t *a)
{
    char dir[PATH_MAX + 16];
    struct stat sb;

    if (a->rot != NULL || geteuid() != 0 ||
        snprintf(dir, sizeof(dir), "%s/" RP_AGENT_DIR, a->state_dir) >= (int)sizeof(dir) ||
        lstat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode) || sb.st_uid == 0)
        return RP_OK;
    if (setgroups(0, NULL) != 0 || setresgid(sb.st_gid, sb.st_gid, sb.st_gid) != 0 ||
        setresuid(sb.st_uid, sb.st_uid, sb.st_uid) != 0 || geteuid() != sb.st_uid) {
        rp_log_error("cannot act as the agent's user (uid %u): %s", (unsigned)sb.st_uid,
                     strerror(errno));
        return RP_ERR_IO;
    }
    rp_log_debug("acting as uid %u, the agent's user (%s's owner)", (unsigned)sb.st_uid, dir);
    return RP_OK;
}

uint32_t rp_agent_seccnt_max(const rp_agent_t *a)
{
    if (a->rot != NULL)
        return rp_rot_seccnt_max(a->rot);
    return a->kind == RP_ROT_TPM2 ? RP_ROT_TPM2_SECCNT_MAX : UINT32_MAX;
}

/* The remote key's signer: the monitor builds the CertificateVerify content and signs it. */
static rp_err_t sign_tls13_by_monitor(void *ctx, rp_tls13_side_t side, const uint8_t *hash,
                                      size_t hash_len, uint8_t *sig, size_t cap, size_t *len)
{
    static rp_mon_reply_t r;
    rp_mon_request_t q = {.type = RP_MON_SIGN_TLS13};
    rp_err_t err;

    if (hash_len > sizeof(q.u.sign_tls13.hash))
        return RP_ERR_INVALID_ARG;
    q.u.sign_tls13.side = (uint8_t)side;
    memcpy(q.u.sign_tls13.hash, hash, hash_len);
    q.u.sign_tls13.hash_len = hash_len;
    err = rp_agent_monitor_call(ctx, &q, -1, &r);
    if (err == RP_OK && r.u.sign_tls13.len > cap)
        err = RP_ERR_BUFFER_TOO_SMALL;
    if (err == RP_OK) {
        memcpy(sig, r.u.sign_tls13.sig, r.u.sign_tls13.len);
        *len = r.u.sign_tls13.len;
    }
    return err;
}

int rp_agent_ssl_ctx_use(rp_agent_t *a, SSL_CTX *ctx, const char *cert)
{
    uint8_t spki[RP_PUBKEY_DER_MAX], *p = spki;
    EVP_PKEY *key = NULL;
    int len, ok;

    if (a->rot != NULL)
        return rp_rot_ssl_ctx_use(a->rot, ctx, cert);
    len = i2d_PUBKEY(a->pub, NULL);
    if (len > 0 && len <= (int)sizeof(spki) && i2d_PUBKEY(a->pub, &p) == len)
        key = rp_remote_key_new_tls13(spki, (size_t)len, sign_tls13_by_monitor, a);
    /* TLS 1.3 only: the monitor signs nothing but a TLS 1.3 CertificateVerify. */
    ok = key != NULL && SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) == 1 &&
         SSL_CTX_use_certificate_chain_file(ctx, cert) == 1 &&
         SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1;
    if (!ok) {
        rp_log_error("TLS with the device key through the monitor: %s",
                     ERR_error_string(ERR_peek_last_error(), NULL));
        ERR_clear_error();
    }
    EVP_PKEY_free(key); /* the SSL_CTX keeps its own reference */
    return ok ? 1 : 0;
}

rp_err_t rp_agent_ask_evidence(rp_agent_t *a, const uint8_t *nonce, size_t nonce_len, uint8_t *out,
                               size_t cap, size_t *len)
{
    rp_err_t err;

    if (a->rot != NULL)
        return rp_agent_evidence(a, nonce, nonce_len, out, cap, len);
    { /* the monitor measures and signs: the agent only asks */
        static rp_mon_reply_t r;
        rp_mon_request_t q = {.type = RP_MON_EVIDENCE};
        if (nonce_len > sizeof(q.u.evidence.nonce))
            return RP_ERR_INVALID_ARG;
        memcpy(q.u.evidence.nonce, nonce, nonce_len);
        q.u.evidence.nonce_len = nonce_len;
        err = rp_agent_monitor_call(a, &q, -1, &r);
        if (err == RP_OK && r.u.evidence.len > cap)
            err = RP_ERR_BUFFER_TOO_SMALL;
        if (err == RP_OK) {
            memcpy(out, r.u.evidence.eat, r.u.evidence.len);
            *len = r.u.evidence.len;
        }
        return err;
    }
}

/* One of the agent's own files (rp_agent_file_for_write), replaced atomically; 0644: a
 * certificate and a verdict are not secret. */
static rp_err_t write_agent_file(const rp_agent_t *a, const char *name, const void *data,
                                 size_t len)
{
    char path[PATH_MAX + 64];
    rp_err_t err = rp_agent_file_for_write(a, name, path, sizeof(path));

    return err == RP_OK ? rp_write_file_atomic(path, data, len, 0644, 0) : err;
}

/* The certificates of pem (len bytes) into certs[*n..cap) (at most cap in all; the caller frees
 * them); whether every PEM block of it was one: the only reader of service-supplied PEM bundles
 * here (never asking for a pass phrase: review r13 L2). */
static bool service_ca_certs(const char *pem, size_t len, X509 **certs, int *n, int cap)
{
    static const char marker[] = "-----BEGIN ";
    BIO *bio = len > 0 && len <= RP_AGENT_SERVICE_CA_MAX ? BIO_new_mem_buf(pem, (int)len) : NULL;
    X509 *cert;
    int read = 0, blocks = 0;

    for (const char *p = pem; (p = memmem(p, len - (size_t)(p - pem), marker, sizeof(marker) - 1));
         p++)
        blocks++;
    while (bio != NULL && (cert = PEM_read_bio_X509(bio, NULL, rp_pem_no_passphrase, NULL))) {
        read++;
        if (*n < cap)
            certs[(*n)++] = cert;
        else
            X509_free(cert);
    }
    ERR_clear_error();
    BIO_free(bio);
    return read >= 1 && read == blocks;
}

bool rp_agent_service_ca_valid(const char *pem, size_t len)
{
    X509 *certs[RP_AGENT_SERVICE_CA_COUNT + 1];
    int n = 0;
    bool ok = service_ca_certs(pem, len, certs, &n, RP_AGENT_SERVICE_CA_COUNT + 1) &&
              n <= RP_AGENT_SERVICE_CA_COUNT;

    while (n > 0)
        X509_free(certs[--n]);
    return ok;
}

/* One certificate as `status` shows it: its subject, SHA-256 fingerprint and times. */
static json_t *service_ca_json(X509 *cert)
{
    uint8_t md[32];
    unsigned int md_len = 0;
    char hex[2 * sizeof(md) + 1] = "", *subject = NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    long len = 0;
    json_t *out = NULL;

    if (bio != NULL &&
        X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0 &&
        BIO_write(bio, "", 1) == 1 && (len = BIO_get_mem_data(bio, &subject)) > 0 &&
        X509_digest(cert, EVP_sha256(), md, &md_len) == 1 && md_len == sizeof(md) &&
        rp_hex_encode(md, sizeof(md), hex, sizeof(hex)) == RP_OK)
        out = json_pack("{s:s, s:s, s:I, s:I}", "subject", subject, "sha256", hex, "not_before",
                        (json_int_t)rp_cert_time(X509_get0_notBefore(cert)), "not_after",
                        (json_int_t)rp_cert_time(X509_get0_notAfter(cert)));
    ERR_clear_error();
    BIO_free(bio);
    return out;
}

json_t *rp_agent_service_ca_list(const rp_agent_t *a)
{
    char path[PATH_MAX + 64];
    uint8_t *data = NULL;
    size_t len = 0;
    X509 *certs[RP_AGENT_SERVICE_CA_SHOWN];
    int n = 0;
    json_t *list = json_array();

    /* (none before the first attestation; one that does not read wholly: what reads) */
    if (list != NULL && rp_agent_file(a, "service-ca.pem", path, sizeof(path)) == RP_OK &&
        rp_read_file(path, 2 * RP_AGENT_SERVICE_CA_MAX + 1, &data, &len) == RP_OK && len > 0) {
        BIO *bio = BIO_new_mem_buf(data, (int)len);
        X509 *cert;

        while (bio != NULL && n < RP_AGENT_SERVICE_CA_SHOWN &&
               (cert = PEM_read_bio_X509(bio, NULL, rp_pem_no_passphrase, NULL)) != NULL)
            certs[n++] = cert;
        ERR_clear_error();
        BIO_free(bio);
    }
    for (int i = 0; i < n; i++) {
        json_t *one = service_ca_json(certs[i]);
        if (one != NULL)
            json_array_append_new(list, one);
        X509_free(certs[i]);
    }
    free(data);
    return list;
}

/* The kept file (path, *kept: malloc'd, *kept_len) when it is the given file (*mine, *mine_len:
 * malloc'd) whole, a newline, then service CAs that still read as such (from *kept + *mine_len +
 * 1); each buffer set (or NULL) either way. */
static bool kept_file(const rp_agent_t *a, const char *given, char *path, size_t cap,
                      uint8_t **mine, size_t *mine_len, uint8_t **kept, size_t *kept_len)
{
    *mine = *kept = NULL;
    *mine_len = *kept_len = 0;
    return rp_agent_file(a, "service-ca.pem", path, cap) == RP_OK &&
           rp_read_file(given, RP_AGENT_SERVICE_CA_MAX, mine, mine_len) == RP_OK &&
           rp_read_file(path, 2 * RP_AGENT_SERVICE_CA_MAX + 1, kept, kept_len) == RP_OK &&
           *kept_len > *mine_len + 1 && memcmp(*kept, *mine, *mine_len) == 0 &&
           /* (the given file whole: one given a prefix of the old one, a CA taken out, does not
            * trust the rest; review r13 L1) */
           (*kept)[*mine_len] == '\n' &&
           rp_agent_service_ca_valid((const char *)*kept + *mine_len + 1,
                                     *kept_len - *mine_len - 1);
}

void rp_agent_service_ca(const rp_agent_t *a, const char *given, char *out, size_t cap)
{
    char path[PATH_MAX + 64];
    uint8_t *mine, *kept;
    size_t mine_len, kept_len;
    bool use = kept_file(a, given, path, sizeof(path), &mine, &mine_len, &kept, &kept_len);

    free(mine);
    free(kept);
    snprintf(out, cap, "%s", use ? path : given);
}

/* Whether cert is among certs[0..n). */
static bool among(X509 *const *certs, int n, const X509 *cert)
{
    for (int i = 0; i < n; i++)
        if (X509_cmp(certs[i], cert) == 0)
            return true;
    return false;
}

void rp_agent_service_ca_keep(const rp_agent_t *a, const char *given, const char *published,
                              int64_t now)
{
    char path[PATH_MAX + 64], *data;
    uint8_t *mine, *kept;
    size_t mine_len, kept_len, len = strlen(published);
    X509 *was[RP_AGENT_SERVICE_CA_COUNT], *now_pub[RP_AGENT_SERVICE_CA_COUNT],
        *keep[2 * RP_AGENT_SERVICE_CA_COUNT];
    int n_was = 0, n_pub = 0, n = 0, oldest;
    int64_t newest = INT64_MIN;
    BIO *out = NULL;
    long out_len;
    bool had = kept_file(a, given, path, sizeof(path), &mine, &mine_len, &kept, &kept_len);
    rp_err_t err = service_ca_certs(published, len, now_pub, &n_pub, RP_AGENT_SERVICE_CA_COUNT) &&
                           rp_agent_service_ca_valid(published, len)
                       ? RP_OK
                       : RP_ERR_MALFORMED;

    if (err == RP_OK && mine == NULL)
        err = rp_read_file(given, RP_AGENT_SERVICE_CA_MAX, &mine, &mine_len);
    /* What is published now, and what was kept that it lacks only while that is newer (a later
     * notBefore) than the newest published and has not ended: a replica that lacks the successor
     * does not erase it (review r13 M3), and a CA the service leaves out beside a newer one is
     * withdrawn (review r14 M1: a stolen successor, replaced). Past the bound, the oldest kept
     * (earliest notBefore) goes first: a far notAfter does not outstay the others. */
    for (int i = 0; i < n_pub; i++)
        if (rp_cert_time(X509_get0_notBefore(now_pub[i])) > newest)
            newest = rp_cert_time(X509_get0_notBefore(now_pub[i]));
    if (err == RP_OK && had)
        (void)service_ca_certs((const char *)kept + mine_len + 1, kept_len - mine_len - 1, was,
                               &n_was, RP_AGENT_SERVICE_CA_COUNT);
    for (int i = 0; err == RP_OK && i < n_was; i++)
        if (!among(now_pub, n_pub, was[i]) && rp_cert_time(X509_get0_notBefore(was[i])) > newest &&
            rp_cert_time(X509_get0_notAfter(was[i])) > now)
            keep[n++] = was[i];
    while (n > 0 && n + n_pub > RP_AGENT_SERVICE_CA_COUNT) {
        oldest = 0;
        for (int i = 1; i < n; i++)
            if (rp_cert_time(X509_get0_notBefore(keep[i])) <
                rp_cert_time(X509_get0_notBefore(keep[oldest])))
                oldest = i;
        keep[oldest] = keep[--n];
    }
    for (int i = 0; i < n_pub; i++)
        keep[n++] = now_pub[i];
    if (err == RP_OK)
        err = (out = BIO_new(BIO_s_mem())) != NULL &&
                      BIO_write(out, mine, (int)mine_len) == (int)mine_len &&
                      BIO_write(out, "\n", 1) == 1
                  ? RP_OK
                  : RP_ERR_NO_MEMORY;
    for (int i = 0; err == RP_OK && i < n; i++)
        if (PEM_write_bio_X509(out, keep[i]) != 1)
            err = RP_ERR_NO_MEMORY;
    if (err == RP_OK) {
        out_len = BIO_get_mem_data(out, &data);
        err = write_agent_file(a, "service-ca.pem", data, (size_t)out_len);
    }
    if (err != RP_OK)
        rp_log_warn("cannot keep the service CAs the service published (service-ca.pem): %s",
                    rp_strerror(err));
    ERR_clear_error();
    BIO_free(out);
    while (n_was > 0)
        X509_free(was[--n_was]);
    while (n_pub > 0)
        X509_free(now_pub[--n_pub]);
    free(mine);
    free(kept);
}

/* POST JSON to the service: req, or with make (rp_http_post_bound) a body made from the
 * connection's binding. OUT: the parsed response object (caller frees); res: the status, any
 * Retry-After, and on failure the reason. */
static rp_err_t post_json_or_bound(const char *server, const char *path, const char *ca_file,
                                   json_t *req, rp_http_bound_body_fn make, void *arg,
                                   json_t **resp, rp_agent_result_t *res)
{
    char url[1024], *body = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
    rp_http_opts_t o = {ca_file, NULL, "application/json", 30, NULL, NULL,
                        NULL,    NULL, RP_HTTP_BUSY_WAIT};
    rp_http_response_t r;
    rp_err_t err;

    *resp = NULL;
    if (body == NULL && make == NULL)
        return RP_ERR_NO_MEMORY;
    snprintf(url, sizeof(url), "%s%s", server, path);
    err = make != NULL ? rp_http_post_bound(url, &o, make, arg, &r)
                       : rp_http_request("POST", url, &o, body, strlen(body), &r);
    free(body);
    if (err != RP_OK) {
        snprintf(res->reason, sizeof(res->reason), "%s", r.error);
        return err;
    }
    res->http_status = r.status;
    res->retry_after = r.retry_after;
    *resp = json_loadb(r.body, r.len, 0, NULL);
    rp_http_response_free(&r);
    if (!json_is_object(*resp)) {
        json_decref(*resp);
        *resp = NULL;
        snprintf(res->reason, sizeof(res->reason), "the service answered %ld with no JSON object",
                 res->http_status);
        return RP_ERR_MALFORMED;
    }
    return RP_OK;
}

static rp_err_t post_json(const char *server, const char *path, const char *ca_file, json_t *req,
                          json_t **resp, rp_agent_result_t *res)
{
    return post_json_or_bound(server, path, ca_file, req, NULL, NULL, resp, res);
}

/* The service's reason for an answer other than 200, in res->reason. */
static void refusal_reason(json_t *resp, rp_agent_result_t *res)
{
    const char *why = json_string_value(json_object_get(resp, "reason"));

    if (why == NULL)
        why = json_string_value(json_object_get(resp, "message"));
    snprintf(res->reason, sizeof(res->reason), "%s", why != NULL ? why : "refused");
}

/* The attestation request's body: the device's evidence for nonce (its eat_nonce: a nonce the
 * service issued, or the connection's binding) and its public key. */
struct attest_body {
    rp_agent_t *a;
    const char *key_b64;
};

static rp_err_t make_attest_body(void *arg, const uint8_t *nonce, size_t nonce_len, char **out,
                                 size_t *out_len)
{
    struct attest_body *ab = arg;
    uint8_t evidence[RP_EAT_MAX_SIZE];
    size_t evidence_len;
    char *b64 = NULL;
    json_t *req = NULL;
    rp_err_t err;

    *out = NULL;
    /* Evidence, signed inside the root of trust. */
    err = rp_agent_ask_evidence(ab->a, nonce, nonce_len, evidence, sizeof(evidence), &evidence_len);
    if (err != RP_OK)
        rp_reportq_event(ab->a, RP_REPORT_ROT_ERROR, NULL, RP_REPORT_CODE_EVIDENCE,
                         "the root of trust made no evidence: %s", rp_strerror(err));
    if (err == RP_OK)
        err = rp_base64_encode(evidence, evidence_len, &b64);
    if (err == RP_OK) {
        req = json_pack("{s:s, s:s}", "evidence", b64, "public_key", ab->key_b64);
        *out = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
        err = *out != NULL ? RP_OK : RP_ERR_NO_MEMORY;
    }
    if (err == RP_OK)
        *out_len = strlen(*out);
    json_decref(req);
    free(b64);
    return err;
}

/* The nonce flow: a nonce, then the evidence for it (two requests). OUT: *resp, res. */
static rp_err_t attest_with_nonce(struct attest_body *ab, const char *server, const char *ca_file,
                                  json_t **resp, rp_agent_result_t *res)
{
    uint8_t nonce[RP_EAT_NONCE_MAX];
    size_t nonce_len, body_len;
    const char *nonce_hex;
    char *body = NULL;
    json_t *req = json_pack("{s:s}", "device_id", ab->a->device_id);
    rp_err_t err = post_json(server, "/api/v1/attest/nonce", ca_file, req, resp, res);

    json_decref(req);
    if (err != RP_OK || res->http_status != 200) /* busy, rate-limited...: the service says why */
        return err;
    nonce_hex = json_string_value(json_object_get(*resp, "nonce"));
    if (nonce_hex == NULL || strlen(nonce_hex) % 2 != 0 || strlen(nonce_hex) / 2 > sizeof(nonce) ||
        rp_hex_decode(nonce_hex, strlen(nonce_hex), nonce, strlen(nonce_hex) / 2) != RP_OK) {
        snprintf(res->reason, sizeof(res->reason), "the service's answer lacks a nonce");
        json_decref(*resp);
        *resp = NULL;
        return RP_ERR_MALFORMED;
    }
    nonce_len = strlen(nonce_hex) / 2;
    json_decref(*resp);
    *resp = NULL;
    err = make_attest_body(ab, nonce, nonce_len, &body, &body_len);
    if (err == RP_OK) {
        req = json_loadb(body, body_len, 0, NULL);
        err = req != NULL ? post_json(server, "/api/v1/attest", ca_file, req, resp, res)
                          : RP_ERR_NO_MEMORY;
        json_decref(req);
    }
    free(body);
    return err;
}

/* Once the service refused bound evidence as bound to another connection (a proxy that ends TLS
 * sits between) or as a nonce it never issued (a service older than the bound flow), or the
 * connection had no binding to bind it to (TLS 1.2: a proxy that ends TLS and speaks no 1.3), this
 * process attests with the nonce flow. None of these is a network attacker's to cause: the first
 * two are answers on a connection whose peer the agent verified; the last is that peer's choice
 * (TLS 1.3's downgrade protection refuses a 1.2 handshake forced on two ends that speak 1.3) or
 * this device's own TLS stack. And the nonce flow is sound by itself (docs/protocol.md). */
static bool nonce_flow_only;

rp_err_t rp_agent_attest(rp_agent_t *a, const char *server, const char *given,
                         rp_agent_result_t *res)
{
    char ca_file[PATH_MAX + 64];
    uint8_t spki[RP_PUBKEY_DER_MAX], *p = spki;
    char *key_b64 = NULL;
    const char *cert, *chain, *serial, *not_after, *why;
    json_t *resp = NULL;
    struct attest_body ab = {a, NULL};
    struct tm tm;
    rp_err_t err;
    int n;

    memset(res, 0, sizeof(*res));
    rp_agent_service_ca(a, given, ca_file, sizeof(ca_file));
    /* The key the evidence is signed with: the device's ID is its hash. */
    n = i2d_PUBKEY(rp_agent_pubkey(a), NULL);
    err = n > 0 && n <= (int)sizeof(spki) && i2d_PUBKEY(rp_agent_pubkey(a), &p) == n
              ? rp_base64_encode(spki, (size_t)n, &key_b64)
              : RP_ERR_CRYPTO;
    ab.key_b64 = key_b64;
    if (err == RP_OK && !nonce_flow_only) {
        /* One request: the evidence bound to the connection that carries it. */
        err = post_json_or_bound(server, "/api/v1/attest", ca_file, NULL, make_attest_body, &ab,
                                 &resp, res);
        why = json_string_value(json_object_get(resp, "reason"));
        if (err == RP_ERR_UNSUPPORTED) { /* no evidence made or sent: the request ended first */
            rp_log_info("%s; attesting with a nonce from now on", res->reason);
            nonce_flow_only = true;
            res->reason[0] = '\0';
            err = RP_OK;
        } else if (err == RP_OK && res->http_status == 403 && why != NULL &&
                   (strcmp(why, "channel_mismatch") == 0 || strcmp(why, "nonce_unknown") == 0)) {
            rp_log_info("the service refused evidence bound to the TLS connection (%s): "
                        "attesting with a nonce from now on",
                        why);
            nonce_flow_only = true;
            json_decref(resp);
            resp = NULL;
        }
    }
    if (err == RP_OK && nonce_flow_only)
        err = attest_with_nonce(&ab, server, ca_file, &resp, res);
    if (err != RP_OK)
        goto out;
    if (res->http_status != 200) {
        refusal_reason(resp, res);
        goto out;
    }
    cert = json_string_value(json_object_get(resp, "certificate"));
    chain = json_string_value(json_object_get(resp, "ca_chain"));
    serial = json_string_value(json_object_get(resp, "serial"));
    not_after = json_string_value(json_object_get(resp, "not_after"));
    if (cert == NULL || chain == NULL || serial == NULL || not_after == NULL ||
        strptime(not_after, "%Y-%m-%dT%H:%M:%SZ", memset(&tm, 0, sizeof(tm))) == NULL) {
        snprintf(res->reason, sizeof(res->reason), "the service's answer lacks the certificate");
        err = RP_ERR_MALFORMED;
        goto out;
    }
    /* The chain first: a certificate on disk always has its CA beside it. */
    err = write_agent_file(a, "ca-chain.pem", chain, strlen(chain));
    if (err == RP_OK)
        err = write_agent_file(a, "device.crt", cert, strlen(cert));
    if (err == RP_OK && json_is_string(json_object_get(resp, "service_ca")))
        rp_agent_service_ca_keep(a, given, json_string_value(json_object_get(resp, "service_ca")),
                                 (int64_t)time(NULL));
    if (err == RP_OK) {
        static bool clamp_logged; /* once per process: a service's value, not news each day */
        json_t *in = json_object_get(resp, "expires_in");
        int64_t span = rp_agent_cert_not_after(a) - rp_agent_cert_not_before(a);
        int64_t said = json_is_integer(in) ? (int64_t)json_integer_value(in) : 0;
        bool clamped = false;
        res->passed = true;
        res->not_after = (int64_t)timegm(&tm);
        res->life = rp_agent_plan_life(said, span, &clamped);
        if (clamped && !clamp_logged) {
            clamp_logged = true;
            rp_log_warn("the service's certificate life (expires_in %lld, certificate %lld s) is "
                        "out of [%d, %d] s: renewal planned on %lld s",
                        (long long)said, (long long)span, RP_AGENT_LIFE_MIN, RP_AGENT_LIFE_MAX,
                        (long long)res->life);
        }
        snprintf(res->serial, sizeof(res->serial), "%s", serial);
        snprintf(res->reason, sizeof(res->reason), "pass");
    }
out : {
    /* What happened, for `rampart-agent status` and operators on the device. */
    json_t *st = json_pack("{s:s, s:b, s:s, s:I, s:I}", "device_id", a->device_id, "passed",
                           res->passed, "reason", res->reason, "at", (json_int_t)time(NULL),
                           "not_after", (json_int_t)res->not_after);
    char *text = st != NULL ? json_dumps(st, JSON_INDENT(2)) : NULL;
    if (text != NULL)
        (void)write_agent_file(a, "attestation.json", text, strlen(text));
    free(text);
    json_decref(st);
}
    free(key_b64);
    json_decref(resp);
    return err;
}

int64_t rp_agent_plan_life(int64_t expires_in, int64_t cert_span, bool *clamped)
{
    /* The answer's expires_in when it is one the certificate can have (an older service sends
     * none; a certificate is never shorter than the life it is said to have), else the
     * certificate's own span; then within the bounds, before anyone multiplies it. */
    int64_t life =
        expires_in > 0 && (cert_span <= 0 || expires_in <= cert_span) ? expires_in : cert_span;
    *clamped = false;
    if (life < RP_AGENT_LIFE_MIN || life > RP_AGENT_LIFE_MAX) {
        *clamped = true;
        life = life < RP_AGENT_LIFE_MIN ? RP_AGENT_LIFE_MIN : RP_AGENT_LIFE_MAX;
    }
    return life;
}

long rp_agent_renew_wait(int64_t life)
{
    bool clamped;
    life = rp_agent_plan_life(life, 0, &clamped);
    return (long)(life / 3 * 2); /* two thirds: at most a day, never an overflow */
}
