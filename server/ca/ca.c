/*
 * The service's certificates, on OpenSSL's X.509 API: the service identity, tenant CAs, device
 * certificates and CRLs, and the check of a client certificate against a CA. Private keys are
 * generated here, kept encrypted at rest (tenant CAs: PKCS#8 under the master key) or 0600 (the
 * service's own), and freed (wiped) by OpenSSL.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "names.h"
#include "rampart/bytes.h"
#include "rampart/failpoint.h"
#include "rampart/file.h"
#include "rampart/hex.h"
#include "rampart/key.h"
#include "rampart/log.h"

#define SERVER_CERT_LIFETIME (397 * 24 * 3600)

void rp_ca_free(rp_ca_t *ca)
{
    for (int i = 0; i < ca->n && i < RP_CA_LIVE; i++) {
        X509_free(ca->certs[i]);
        EVP_PKEY_free(ca->keys[i]);
    }
    EVP_MD_CTX_free(ca->sign_ctx);
    free(ca->cert_pem);
    for (size_t i = 0; i < sizeof(ca->device_exts) / sizeof(ca->device_exts[0]); i++)
        X509_EXTENSION_free(ca->device_exts[i]);
    memset(ca, 0, sizeof(*ca));
}

static rp_err_t openssl_failed(const char *what)
{
    rp_log_error("%s: %s", what, ERR_error_string(ERR_peek_last_error(), NULL));
    ERR_clear_error();
    return RP_ERR_CRYPTO;
}

/*
 * A certificate's serial (OUT: in lowercase hex, the form the store keys by): 0x01, the time in
 * microseconds (7 bytes, big-endian), then 8 random bytes. Unique and unpredictable (64 bits from
 * the CSPRNG, what the CA/Browser Forum asks of public CAs), always 16 bytes and positive; and in
 * the order they are made, so that the index of the certificates table on them grows at its end,
 * instead of at one random page per certificate.
 */
static rp_err_t set_serial(X509 *cert, char hex[RP_SERIAL_SIZE])
{
    uint8_t b[16];
    struct timespec now;
    uint64_t us;
    BIGNUM *bn;
    char *h;
    int ok;

    if (clock_gettime(CLOCK_REALTIME, &now) != 0 || RAND_bytes(b + 8, 8) != 1)
        return RP_ERR_CRYPTO;
    us = (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u;
    b[0] = 0x01;
    rp_be_put(b + 1, us, 7);
    bn = BN_bin2bn(b, sizeof(b), NULL);
    ok = bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL;
    h = ok ? BN_bn2hex(bn) : NULL;
    BN_free(bn);
    if (h == NULL)
        return RP_ERR_CRYPTO;
    for (size_t i = 0; h[i] != '\0'; i++)
        h[i] = (char)tolower((unsigned char)h[i]);
    snprintf(hex, RP_SERIAL_SIZE, "%s", h);
    OPENSSL_free(h);
    return RP_OK;
}

static rp_err_t add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx(&ctx, issuer != NULL ? issuer : cert, cert, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    ok = ext != NULL && X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok ? RP_OK : openssl_failed("certificate extension");
}

static rp_err_t set_name(X509_NAME *name, const char *cn, const char *org)
{
    if (org != NULL && X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                                  (const unsigned char *)org, -1, -1, 0) != 1)
        return openssl_failed("name");
    if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                   0) != 1)
        return openssl_failed("name");
    return RP_OK;
}

/* The parts every certificate shares; the caller adds extensions (and the key, when pubkey is
 * NULL) and signs. */
static rp_err_t new_cert(EVP_PKEY *pubkey, const char *cn, const char *org, X509 *issuer,
                         int64_t not_before, int64_t not_after, X509 **out,
                         char serial[RP_SERIAL_SIZE])
{
    X509 *cert = X509_new();
    rp_err_t err = cert != NULL ? RP_OK : RP_ERR_NO_MEMORY;

    if (err == RP_OK && X509_set_version(cert, X509_VERSION_3) != 1)
        err = RP_ERR_CRYPTO;
    if (err == RP_OK)
        err = set_serial(cert, serial);
    if (err == RP_OK)
        err = set_name(X509_get_subject_name(cert), cn, org);
    if (err == RP_OK &&
        X509_set_issuer_name(cert, issuer != NULL ? X509_get_subject_name(issuer)
                                                  : X509_get_subject_name(cert)) != 1)
        err = RP_ERR_CRYPTO;
    if (err == RP_OK && (ASN1_TIME_set(X509_getm_notBefore(cert), (time_t)not_before) == NULL ||
                         ASN1_TIME_set(X509_getm_notAfter(cert), (time_t)not_after) == NULL))
        err = RP_ERR_CRYPTO;
    if (err == RP_OK && pubkey != NULL && X509_set_pubkey(cert, pubkey) != 1)
        err = RP_ERR_CRYPTO;
    if (err != RP_OK) {
        X509_free(cert);
        ERR_clear_error();
        return err;
    }
    *out = cert;
    return RP_OK;
}

static rp_err_t sign_cert(X509 *cert, EVP_PKEY *key)
{
    return X509_sign(cert, key, EVP_sha256()) > 0 ? RP_OK : openssl_failed("signing a certificate");
}

/* Sign with a copy of a context made ready once (rp_ca_t's sign_ctx): the same signature as
 * sign_cert() with its key, 24 us instead of 28 (bench/attest: one per attestation). */
static rp_err_t sign_cert_ready(X509 *cert, const EVP_MD_CTX *ready)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    int ok = m != NULL && EVP_MD_CTX_copy_ex(m, ready) == 1 && X509_sign_ctx(cert, m) > 0;

    EVP_MD_CTX_free(m);
    return ok ? RP_OK : openssl_failed("signing a certificate");
}

/* A self-signed CA certificate for key, back-dated RP_CA_BACKDATE: further than the device
 * certificates it issues (a new tenant's first one is not cut short by its CA's start), and as far
 * as a clock may have been ahead when it was made and the CA still count (ca.h). */
static rp_err_t make_ca_cert(EVP_PKEY *key, const char *cn, const char *org, int64_t now,
                             int64_t lifetime, X509 **out)
{
    char serial[RP_SERIAL_SIZE];
    X509 *cert = NULL;
    rp_err_t err =
        new_cert(key, cn, org, NULL, now - RP_CA_BACKDATE, now + lifetime, &cert, serial);

    if (err == RP_OK)
        err = add_ext(cert, NULL, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
    if (err == RP_OK)
        err = add_ext(cert, NULL, NID_key_usage, "critical,keyCertSign,cRLSign");
    if (err == RP_OK)
        err = add_ext(cert, NULL, NID_subject_key_identifier, "hash");
    if (err == RP_OK)
        err = add_ext(cert, NULL, NID_authority_key_identifier, "keyid:always");
    if (err == RP_OK)
        err = sign_cert(cert, key);
    if (err != RP_OK) {
        X509_free(cert);
        return err;
    }
    *out = cert;
    return RP_OK;
}

rp_err_t rp_cert_pem(X509 *cert, char **pem)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    long len;

    if (bio == NULL || PEM_write_bio_X509(bio, cert) != 1) {
        BIO_free(bio);
        return RP_ERR_CRYPTO;
    }
    len = BIO_get_mem_data(bio, &data);
    *pem = malloc((size_t)len + 1);
    if (*pem != NULL) {
        memcpy(*pem, data, (size_t)len);
        (*pem)[len] = '\0';
    }
    BIO_free(bio);
    return *pem != NULL ? RP_OK : RP_ERR_NO_MEMORY;
}

rp_err_t rp_certs_pem(X509 *const *certs, int n, char **pem)
{
    char *one[RP_CA_LIVE] = {0};
    size_t total = 1, at = 0;
    rp_err_t err = n >= 0 && n <= RP_CA_LIVE ? RP_OK : RP_ERR_INVALID_ARG;

    for (int k = 0; k < n && err == RP_OK; k++) {
        err = rp_cert_pem(certs[k], &one[k]);
        if (err == RP_OK)
            total += strlen(one[k]);
    }
    *pem = err == RP_OK ? malloc(total) : NULL;
    for (int k = 0; k < n && *pem != NULL; k++) {
        memcpy(*pem + at, one[k], strlen(one[k]));
        at += strlen(one[k]);
    }
    for (int k = 0; k < RP_CA_LIVE; k++)
        free(one[k]);
    if (*pem == NULL)
        return err != RP_OK ? err : RP_ERR_NO_MEMORY;
    (*pem)[at] = '\0';
    return RP_OK;
}

static rp_err_t write_pem_file(const char *dir, const char *name, mode_t mode,
                               int (*write)(BIO *, void *), void *obj)
{
    char path[4096];
    BIO *bio = BIO_new(BIO_s_secmem());
    rp_atomic_file_t f;
    char *data;
    long len;
    rp_err_t err;

    if (bio == NULL)
        return RP_ERR_NO_MEMORY;
    if (write(bio, obj) != 1) {
        BIO_free(bio);
        return openssl_failed(name);
    }
    len = BIO_get_mem_data(bio, &data);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    err = rp_atomic_begin(&f, path, mode, 0);
    if (err == RP_OK)
        err = rp_atomic_write(&f, data, (size_t)len);
    if (err == RP_OK)
        err = rp_atomic_commit(&f, 0);
    else
        rp_atomic_abort(&f);
    BIO_free(bio);
    return err;
}

static int write_cert(BIO *bio, void *cert)
{
    return PEM_write_bio_X509(bio, cert);
}

static int write_key(BIO *bio, void *key)
{
    return PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL);
}

static X509 *read_cert_file(const char *dir, const char *name)
{
    char path[4096];
    X509 *cert = NULL;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "r");
    if (f != NULL) {
        cert = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
    }
    ERR_clear_error();
    return cert;
}

static EVP_PKEY *read_key_file(const char *dir, const char *name)
{
    char path[4096];
    EVP_PKEY *key = NULL;
    bool priv;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (rp_key_load(path, &key, &priv) != RP_OK || !priv) {
        EVP_PKEY_free(key);
        return NULL;
    }
    return key;
}

static rp_err_t make_server_cert(const char *data_dir, X509 *ca, EVP_PKEY *ca_key,
                                 const char *hostnames, int64_t now, int64_t not_after)
{
    char san[2048] = "DNS:localhost,IP:127.0.0.1,IP:::1", serial[RP_SERIAL_SIZE], copy[1024];
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    rp_err_t err;

    if (hostnames != NULL && hostnames[0] != '\0') {
        snprintf(copy, sizeof(copy), "%s", hostnames);
        for (char *save = NULL, *h = strtok_r(copy, ",", &save); h != NULL;
             h = strtok_r(NULL, ",", &save)) {
            size_t used = strlen(san);
            bool ip = strspn(h, "0123456789.:abcdefABCDEF") == strlen(h) && strpbrk(h, ".:");
            snprintf(san + used, sizeof(san) - used, ",%s:%s", ip ? "IP" : "DNS", h);
        }
    }
    err = rp_key_generate(RP_SIG_ECDSA_P256, &key);
    if (err == RP_OK)
        err =
            new_cert(key, "Rampart security service", NULL, ca, now - 60, not_after, &cert, serial);
    if (err == RP_OK)
        err = add_ext(cert, ca, NID_basic_constraints, "critical,CA:FALSE");
    if (err == RP_OK)
        err = add_ext(cert, ca, NID_key_usage, "critical,digitalSignature");
    if (err == RP_OK)
        err = add_ext(cert, ca, NID_ext_key_usage, "serverAuth");
    if (err == RP_OK)
        err = add_ext(cert, ca, NID_subject_alt_name, san);
    if (err == RP_OK)
        err = add_ext(cert, ca, NID_authority_key_identifier, "keyid:always");
    if (err == RP_OK)
        err = sign_cert(cert, ca_key);
    /* The key first: a crash between the two leaves a key without its certificate, which the
     * next start replaces, never a certificate whose key is gone. */
    if (err == RP_OK)
        err = write_pem_file(data_dir, "server.key", 0600, write_key, key);
    /* The leaf alone: clients hold server-ca.pem, the anchor, so sending it in every handshake
     * would only add bytes and a certificate for each client to parse. An operator's own
     * server.pem may carry intermediates; the server sends whatever chain the file holds. */
    if (err == RP_OK)
        err = write_pem_file(data_dir, "server.pem", 0644, write_cert, cert);
    X509_free(cert);
    EVP_PKEY_free(key);
    return err;
}

static rp_err_t ensure_master_key(const char *data_dir)
{
    char path[4096], hex[2 * RP_MASTER_KEY_LEN + 2];
    uint8_t key[RP_MASTER_KEY_LEN];
    rp_atomic_file_t f;
    rp_err_t err;

    snprintf(path, sizeof(path), "%s/master.key", data_dir);
    if (access(path, F_OK) == 0)
        return RP_OK;
    if (RAND_priv_bytes(key, sizeof(key)) != 1)
        return RP_ERR_CRYPTO;
    err = rp_hex_encode(key, sizeof(key), hex, sizeof(hex));
    rp_wipe(key, sizeof(key));
    if (err == RP_OK) {
        strcat(hex, "\n");
        err = rp_atomic_begin(&f, path, 0600, 1);
    }
    if (err == RP_OK) {
        err = rp_atomic_write(&f, hex, strlen(hex));
        if (err == RP_OK)
            err = rp_atomic_commit(&f, 1);
        else
            rp_atomic_abort(&f);
    }
    rp_wipe(hex, sizeof(hex));
    if (err == RP_OK)
        rp_log_info("made the master key %s (it encrypts tenant CA keys: back it up, keep it "
                    "secret)",
                    path);
    return err;
}

int rp_service_identity_lock(const char *data_dir)
{
    return rp_lock_in(data_dir, "server.lock");
}

void rp_service_identity_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* which unlocks */
}

/*
 * The server certificate in data_dir, made again from the service CA (ca, ca_key) when it is due
 * at now: one of the CA's ending within the renewal margin; at start (at_start) also when it is
 * gone or unreadable, does not go with server.key, or the service CA did not sign it. (While the
 * service runs, those are an operator's doing, for a reload: one of another CA's is only said to
 * near its end, and a reload refuses a file it cannot use, keeping the identity in use.) A new one
 * ends SERVER_CERT_LIFETIME from now or with the service CA, whichever is first, and is made only
 * when it ends later than the one there (near the CA's end, not again at each check). Under
 * DATA_DIR/server.lock: processes sharing the directory make it once. switch_at: when the
 * successor signs in ca's place (0: no successor waiting), said in place of "no successor" when a
 * certificate ending with ca is not renewed (review r14 L1). *renewed: whether one was made.
 * The caller holds server.lock (rp_service_identity_lock), taken before it read the CAs: a
 * promotion (rp_service_ca_promote) does not move them under it.
 */
static rp_err_t server_cert_check(const char *data_dir, X509 *ca, EVP_PKEY *ca_key, X509 *other,
                                  const char *hostnames, bool at_start, int64_t now,
                                  int64_t switch_at, bool *renewed)
{
    X509 *server = read_cert_file(data_dir, "server.pem");
    EVP_PKEY *key = read_key_file(data_dir, "server.key");
    int64_t end = server != NULL ? rp_cert_time(X509_get0_notAfter(server)) : 0,
            begin = server != NULL ? rp_cert_time(X509_get0_notBefore(server)) : 0,
            ca_end = rp_cert_time(X509_get0_notAfter(ca)),
            next = now + SERVER_CERT_LIFETIME < ca_end ? now + SERVER_CERT_LIFETIME : ca_end;
    /* (one of the other service CA's, the one that signed before the switch, is the service's
     * own too: renewed while the service runs; one ahead was made while the clock ran ahead, put
     * right since: clients refuse it as not yet valid; review r13 L3) */
    bool foreign = server != NULL && X509_verify(server, ca_key) != 1 &&
                   (other == NULL || X509_verify(server, X509_get0_pubkey(other)) != 1),
         ahead = server != NULL && begin > now + RP_CA_START_SLACK,
         unfit = at_start && (server == NULL || foreign || key == NULL || ahead ||
                              X509_check_private_key(server, key) != 1),
         ours = server != NULL && !foreign,
         due = ((end - now < RP_SERVER_CERT_RENEW_BEFORE && next > end) || ahead) &&
               (at_start || ours);
    rp_err_t err = RP_OK;
    char when[32], switch_day[32];
    struct tm tm;

    X509_free(server);
    EVP_PKEY_free(key);
    ERR_clear_error();
    *renewed = false;
    if ((unfit || due) && next > now) {
        err = make_server_cert(data_dir, ca, ca_key, hostnames, now, next);
        *renewed = err == RP_OK;
    }
    if (end - now < RP_SERVER_CERT_RENEW_BEFORE && ours && next <= end && switch_at > now) {
        strftime(switch_day, sizeof(switch_day), "%Y-%m-%dT%H:%M:%SZ",
                 gmtime_r(&(time_t){(time_t)switch_at}, &tm));
        rp_log_info("the server certificate ends with the service CA (%s/server-ca.pem); its "
                    "successor signs the next one from %s (nothing to do)",
                    data_dir, switch_day);
    } else if (end - now < RP_SERVER_CERT_RENEW_BEFORE && ours && next <= end)
        rp_log_warn("the service CA (%s/server-ca.pem) ends with the server certificate, which "
                    "cannot outlive it, and there is no successor to sign the next one: make one "
                    "(rampart-server service-ca next; docs/operations.md, \"The service CA's "
                    "lifetime\")",
                    data_dir);
    else if (end - now < RP_SERVER_CERT_RENEW_BEFORE && foreign && !at_start)
        rp_log_warn("%s/server.pem is not the service CA's: the service does not renew it while "
                    "it runs (put a new one there and reload, or restart the service to have it "
                    "make its own)",
                    data_dir);
    if (*renewed) {
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&(time_t){(time_t)next}, &tm));
        rp_log_info("made the server certificate %s/server.pem, valid until %s", data_dir, when);
    }
    return err;
}

/* Whether data_dir/name is there (any answer but "no such file": one the service cannot read is
 * there too). */
/* In the data directory while the first start makes the service CA (service_ca_read). */
#define SERVICE_CA_MAKING RP_SERVICE_CA ".making"
/* In the data directory while the successor is made the service CA (rp_service_ca_promote). */
#define SERVICE_CA_PROMOTING RP_SERVICE_CA ".promoting"

static bool file_there(const char *data_dir, const char *name)
{
    char path[4096];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", data_dir, name);
    return stat(path, &st) == 0 || errno != ENOENT;
}

/* Why data_dir/name (there) did not read as what it should be (what): for the log. */
static void say_unread(const char *data_dir, const char *name, const char *what)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/%s", data_dir, name);
    if (access(path, R_OK) != 0)
        rp_log_error("%s cannot be read by the service (%s): give it the service's user, as "
                     "its other files have",
                     path, strerror(errno));
    else
        rp_log_error("%s is not %s (a copy cut short?): copy it again", path, what);
}

/*
 * A service CA and its key from data_dir (name.pem, name.key). RP_ERR_NOT_FOUND when neither file
 * is there, or (key_alone: the successor, whose key is written first) when the key is there alone:
 * what a crash of its making leaves, made again by rampart-server service-ca next --force (or a
 * copy done in part: the command refuses it without --force). Anything else
 * that does not make a pair is RP_ERR_BAD_KEY (logged: which file, and why), never replaced: a
 * copy or a move done in part, a file the service cannot read, for the operator to put right
 * (review r13 M1).
 */
static rp_err_t service_ca_pair(const char *data_dir, const char *name, bool key_alone, X509 **ca,
                                EVP_PKEY **ca_key)
{
    char pem_name[64], key_name[64];
    bool pem_there, key_there;

    snprintf(pem_name, sizeof(pem_name), "%s.pem", name);
    snprintf(key_name, sizeof(key_name), "%s.key", name);
    pem_there = file_there(data_dir, pem_name);
    key_there = file_there(data_dir, key_name);
    *ca = NULL;
    *ca_key = NULL;
    if (!pem_there && (!key_there || key_alone)) {
        if (key_there && strcmp(name, RP_SERVICE_CA) != 0)
            rp_log_warn("%s/%s is there without %s: copy %s from the replica that made it; "
                        "only where its making was cut: rampart-server service-ca next --force "
                        "(which replaces the key)",
                        data_dir, key_name, pem_name, pem_name);
        else if (key_there)
            rp_log_warn("%s/%s is there without %s, and %s says the service's first start made "
                        "it and was cut short: making the service CA again",
                        data_dir, key_name, pem_name, SERVICE_CA_MAKING);
        return RP_ERR_NOT_FOUND;
    }
    if (pem_there)
        *ca = read_cert_file(data_dir, pem_name);
    if (key_there)
        *ca_key = read_key_file(data_dir, key_name);
    if (*ca != NULL && *ca_key != NULL && X509_check_private_key(*ca, *ca_key) == 1)
        return RP_OK;
    ERR_clear_error();
    if (!pem_there || !key_there)
        rp_log_error("%s/%s is there without %s: copy or move both files (a half-done copy is "
                     "never replaced)",
                     data_dir, pem_there ? pem_name : key_name, pem_there ? key_name : pem_name);
    else if (*ca == NULL)
        say_unread(data_dir, pem_name, "a PEM certificate");
    else if (*ca_key == NULL)
        say_unread(data_dir, key_name, "a PEM private key");
    else
        rp_log_error("%s/%s is not the key of %s/%s: copy or move both files", data_dir, key_name,
                     data_dir, pem_name);
    X509_free(*ca);
    EVP_PKEY_free(*ca_key);
    *ca = NULL;
    *ca_key = NULL;
    return RP_ERR_BAD_KEY;
}

/* The service CA and its key from data_dir; RP_ERR_NOT_FOUND when neither file is there, or
 * (making: SERVICE_CA_MAKING is there) when the key is there alone: a first start that was cut
 * between the key and the certificate, whose key nobody has (it signed nothing). */
static rp_err_t service_ca_read(const char *data_dir, bool making, X509 **ca, EVP_PKEY **ca_key)
{
    return service_ca_pair(data_dir, RP_SERVICE_CA, making, ca, ca_key);
}

int64_t rp_service_ca_lead_end(int64_t cur_not_after, int64_t next_not_before)
{
    int64_t published = next_not_before + RP_CA_PUBLISH_LEAD,
            last = cur_not_after - RP_SERVICE_CA_LAST_DAY;

    return published < last ? published : last;
}

int64_t rp_service_ca_switch_at(int64_t cur_not_after, int64_t next_not_before)
{
    int64_t at = cur_not_after - RP_SERVICE_CA_SWITCH_BEFORE,
            lead = rp_service_ca_lead_end(cur_not_after, next_not_before);

    return lead > at ? lead : at;
}

int rp_service_ca_signer(int64_t cur_not_after, bool have_next, int64_t next_not_before,
                         int64_t next_not_after, int64_t now)
{
    return have_next && now >= next_not_before && now < next_not_after &&
                   now >= rp_service_ca_switch_at(cur_not_after, next_not_before)
               ? 1
               : 0;
}

/* The service CAs in data_dir: the current one and its key (an error when missing), and the
 * successor (*next, *next_key: NULL when there is none), and the one it replaced (*old: the
 * certificate alone, RP_SERVICE_CA_OLD.pem, kept by a promotion; NULL when none); *signer points
 * at the pair that signs the server certificate at now, *other at the other certificate (the
 * successor's or the current one, else the one replaced; NULL: none). Read under server.lock: a
 * promotion cut short (SERVICE_CA_PROMOTING) is completed first. */
struct service_cas {
    X509 *ca, *next, *old;
    EVP_PKEY *ca_key, *next_key;
    X509 *signer, *other;
    EVP_PKEY *signer_key;
    bool next_mismatch; /* successor files there that do not go together */
};

static void service_cas_free(struct service_cas *c)
{
    X509_free(c->ca);
    X509_free(c->next);
    X509_free(c->old);
    EVP_PKEY_free(c->ca_key);
    EVP_PKEY_free(c->next_key);
    memset(c, 0, sizeof(*c));
}

static rp_err_t promote_finish(const char *data_dir);

static rp_err_t service_cas_read(const char *data_dir, int64_t now, struct service_cas *c)
{
    rp_err_t err = RP_OK;
    bool have_next, switched;

    memset(c, 0, sizeof(*c));
    if (file_there(data_dir, SERVICE_CA_PROMOTING))
        err = promote_finish(data_dir);
    if (err == RP_OK)
        err = service_ca_read(data_dir, false, &c->ca, &c->ca_key);
    if (err != RP_OK)
        return err;
    /* (the one replaced: read when it is there, said when it cannot be, never needed) */
    if (file_there(data_dir, RP_SERVICE_CA_OLD ".pem") &&
        (c->old = read_cert_file(data_dir, RP_SERVICE_CA_OLD ".pem")) == NULL) {
        say_unread(data_dir, RP_SERVICE_CA_OLD ".pem", "a PEM certificate");
        ERR_clear_error();
    }
    /* (a successor whose files do not go together counts for nothing: said above) */
    err = service_ca_pair(data_dir, RP_SERVICE_CA_NEXT, true, &c->next, &c->next_key);
    c->next_mismatch = err == RP_ERR_BAD_KEY;
    have_next = err == RP_OK;
    switched =
        rp_service_ca_signer(rp_cert_time(X509_get0_notAfter(c->ca)), have_next,
                             have_next ? rp_cert_time(X509_get0_notBefore(c->next)) : 0,
                             have_next ? rp_cert_time(X509_get0_notAfter(c->next)) : 0, now) == 1;
    c->signer = switched ? c->next : c->ca;
    c->signer_key = switched ? c->next_key : c->ca_key;
    c->other = switched ? c->ca : c->next != NULL ? c->next : c->old;
    return RP_OK;
}

/* When c's successor signs in place of the current CA (c->next there). */
static int64_t switch_of(const struct service_cas *c)
{
    return rp_service_ca_switch_at(rp_cert_time(X509_get0_notAfter(c->ca)),
                                   rp_cert_time(X509_get0_notBefore(c->next)));
}

/* When c's successor takes over, while that is still to come (else 0: none, or switched). */
static int64_t switch_pending(const struct service_cas *c)
{
    return c->next != NULL && c->signer == c->ca ? switch_of(c) : 0;
}

int64_t rp_service_ca_switch_pending(const char *data_dir, int64_t now)
{
    struct service_cas c;
    int64_t at = 0;
    int lock = rp_service_identity_lock(data_dir);

    if (lock >= 0 && service_cas_read(data_dir, now, &c) == RP_OK) {
        at = switch_pending(&c);
        service_cas_free(&c);
    }
    rp_service_identity_unlock(lock);
    return at > now ? at : 0;
}

rp_err_t rp_service_identity_init(const char *data_dir, const char *hostnames)
{
    X509 *ca = NULL;
    EVP_PKEY *ca_key = NULL;
    struct service_cas c;
    int64_t now = (int64_t)time(NULL);
    /* (under server.lock, to the end: processes sharing the data directory that start together
     * on an empty one make one master key and one service CA, the later ones reading what the
     * first made (review r14 L2); a promotion does not move the CAs meanwhile) */
    int lock = rp_service_identity_lock(data_dir);
    rp_err_t err = lock >= 0 ? ensure_master_key(data_dir) : RP_ERR_IO;
    bool renewed;

    char making_path[4096];
    bool making = file_there(data_dir, SERVICE_CA_MAKING);

    /* The first start marks its making (SERVICE_CA_MAKING, before the key) and unmarks it once
     * both files are written: a key there alone is then this service's own, cut short, and made
     * again; without the mark it is a copy done in part, refused (review r13 M1). */
    snprintf(making_path, sizeof(making_path), "%s/%s", data_dir, SERVICE_CA_MAKING);
    if (err == RP_OK && file_there(data_dir, SERVICE_CA_PROMOTING))
        err = promote_finish(data_dir); /* (a promotion cut short: its pairs are half-moved) */
    if (err == RP_OK &&
        (err = service_ca_read(data_dir, making, &ca, &ca_key)) == RP_ERR_NOT_FOUND) {
        err = rp_write_file_atomic(making_path, "", 0, 0600, 0);
        if (err == RP_OK)
            err = rp_key_generate(RP_SIG_ECDSA_P256, &ca_key);
        if (err == RP_OK)
            err =
                make_ca_cert(ca_key, "Rampart service CA", NULL, now, RP_SERVICE_CA_LIFETIME, &ca);
        if (err == RP_OK)
            err = write_pem_file(data_dir, RP_SERVICE_CA ".key", 0600, write_key, ca_key);
        if (err == RP_OK)
            err = write_pem_file(data_dir, RP_SERVICE_CA ".pem", 0644, write_cert, ca);
        if (err == RP_OK)
            rp_log_info("made the service CA %s/server-ca.pem: clients trust this certificate",
                        data_dir);
        making = err == RP_OK;
    }
    /* (a mark left behind a pair that reads: a power cut before its unlink reached the disk) */
    if (err == RP_OK && making && unlink(making_path) != 0 && errno != ENOENT)
        rp_log_warn("cannot remove %s: %s", making_path, strerror(errno));
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    if (err == RP_OK)
        err = service_cas_read(data_dir, now, &c);
    if (err == RP_OK) {
        err = server_cert_check(data_dir, c.signer, c.signer_key, c.other, hostnames, true, now,
                                switch_pending(&c), &renewed);
        service_cas_free(&c);
    }
    rp_service_identity_unlock(lock);
    return err;
}

rp_err_t rp_service_cert_renew(const char *data_dir, const char *hostnames, bool *renewed)
{
    struct service_cas c;
    int64_t now = (int64_t)time(NULL);
    int lock = rp_service_identity_lock(data_dir);
    rp_err_t err;

    *renewed = false;
    err = lock >= 0 ? service_cas_read(data_dir, now, &c) : RP_ERR_IO;
    if (err != RP_OK) {
        rp_log_error("the service CA in %s cannot be used (%s%s): the server certificate cannot "
                     "be renewed",
                     data_dir, rp_strerror(err),
                     err == RP_ERR_NOT_FOUND ? ": server-ca.pem and server-ca.key are gone"
                                             : ", above");
        rp_service_identity_unlock(lock);
        return err;
    }
    err = server_cert_check(data_dir, c.signer, c.signer_key, c.other, hostnames, false, now,
                            switch_pending(&c), renewed);
    service_cas_free(&c);
    rp_service_identity_unlock(lock);
    return err;
}

/* The successor published, said at start with its SHA-256 fingerprint (compare it across the
 * replicas: each must publish the same one) and when it signs. */
static void successor_said(const char *data_dir, const struct service_cas *c)
{
    uint8_t md[32];
    unsigned int md_len = 0;
    char hex[2 * sizeof(md) + 1] = "?", when[32];
    struct tm tm;
    time_t at = (time_t)switch_of(c);

    if (X509_digest(c->next, EVP_sha256(), md, &md_len) != 1 || md_len != sizeof(md) ||
        rp_hex_encode(md, sizeof(md), hex, sizeof(hex)) != RP_OK)
        snprintf(hex, sizeof(hex), "?");
    ERR_clear_error();
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&at, &tm));
    rp_log_info("publishing the service CA's successor %s/%s.pem (SHA-256 %s: the same on every "
                "replica); it signs the TLS certificate from %s",
                data_dir, RP_SERVICE_CA_NEXT, hex, when);
}

rp_err_t rp_service_ca_published(const char *data_dir, int64_t now, char **pem, int64_t *not_before,
                                 int64_t *not_after)
{
    struct service_cas c;
    X509 *newest, *published[3];
    int n = 0, lock = rp_service_identity_lock(data_dir);
    rp_err_t err = lock >= 0 ? service_cas_read(data_dir, now, &c) : RP_ERR_IO;

    rp_service_identity_unlock(lock);
    *pem = NULL;
    if (err != RP_OK)
        return err;
    newest = c.next != NULL ? c.next : c.ca;
    *not_before = rp_cert_time(X509_get0_notBefore(newest));
    *not_after = rp_cert_time(X509_get0_notAfter(newest));
    /* (an ended CA is left out, unless there is no other: what there is; the one a promotion
     * replaced while it lasts: a replica not promoted yet still shows a certificate of it, and
     * devices keep what is published) */
    if (c.old != NULL && rp_cert_time(X509_get0_notAfter(c.old)) > now &&
        X509_cmp(c.old, c.ca) != 0)
        published[n++] = c.old;
    if (rp_cert_time(X509_get0_notAfter(c.ca)) > now || c.next == NULL)
        published[n++] = c.ca;
    if (c.next != NULL)
        published[n++] = c.next;
    err = rp_certs_pem(published, n, pem);
    if (err == RP_OK && rp_ca_rollover_due(*not_before, *not_after, now))
        rp_log_warn("the service CA (%s/%s.pem) ends in %lld day(s) and has no successor: make "
                    "one (rampart-server service-ca next) and copy it to every replica "
                    "(docs/operations.md, \"The service CA's lifetime\")",
                    data_dir, c.next != NULL ? RP_SERVICE_CA_NEXT : RP_SERVICE_CA,
                    (long long)((*not_after - now) / 86400));
    if (err == RP_OK && c.next != NULL)
        successor_said(data_dir, &c);
    service_cas_free(&c);
    if (err != RP_OK) {
        free(*pem);
        *pem = NULL;
    }
    return err;
}

rp_err_t rp_service_ca_next(const char *data_dir, int64_t now, bool force)
{
    struct service_cas c = {0};
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    char cn[64], day[16];
    struct tm tm;
    int lock = rp_service_identity_lock(data_dir);
    rp_err_t err = lock >= 0 ? service_cas_read(data_dir, now, &c) : RP_ERR_IO;

    if (err == RP_ERR_NOT_FOUND)
        rp_log_error("%s/server-ca.pem or server-ca.key is missing: start the service once first",
                     data_dir);
    if (err == RP_OK && c.next_mismatch)
        err = RP_ERR_BAD_KEY; /* (said: for the operator to put right, not to replace) */
    if (err == RP_OK && c.next != NULL) {
        rp_log_error("%s/%s.pem is there already: every replica needs the same one (copy it, "
                     "with %s.key, to any that lacks it)",
                     data_dir, RP_SERVICE_CA_NEXT, RP_SERVICE_CA_NEXT);
        err = RP_ERR_EXISTS;
    }
    /* (a key alone: a cut making, or a copy done in part, whose replacement would make a second
     * successor beside the one other replicas have; review r14 L3) */
    if (err == RP_OK && c.next == NULL && !force &&
        file_there(data_dir, RP_SERVICE_CA_NEXT ".key")) {
        rp_log_error("%s/%s.key is there without %s.pem: copy %s.pem from the replica that made "
                     "it; only where this command's making was cut, run it with --force (which "
                     "replaces the key)",
                     data_dir, RP_SERVICE_CA_NEXT, RP_SERVICE_CA_NEXT, RP_SERVICE_CA_NEXT);
        err = RP_ERR_EXISTS;
    }
    /* (one made early ends early: its ten years start at its making; review r13 L4) */
    if (err == RP_OK && !force &&
        !rp_ca_rollover_due(rp_cert_time(X509_get0_notBefore(c.ca)),
                            rp_cert_time(X509_get0_notAfter(c.ca)), now)) {
        rp_log_error("the service CA (%s/%s.pem) is not due for its successor yet (at two thirds "
                     "of its life; it ends in %lld day(s)): one made now would end that much "
                     "before its time. Run this when the log and /readyz say it is due, or now "
                     "with --force",
                     data_dir, RP_SERVICE_CA,
                     (long long)((rp_cert_time(X509_get0_notAfter(c.ca)) - now) / 86400));
        err = RP_ERR_DENIED;
    }
    if (err == RP_OK) {
        strftime(day, sizeof(day), "%Y-%m-%d", gmtime_r(&(time_t){(time_t)now}, &tm));
        snprintf(cn, sizeof(cn), "Rampart service CA %s", day);
        err = rp_key_generate(RP_SIG_ECDSA_P256, &key);
    }
    if (err == RP_OK)
        err = make_ca_cert(key, cn, NULL, now, RP_SERVICE_CA_LIFETIME, &cert);
    /* The key first: a crash between the two leaves a key without its certificate, which counts
     * for nothing (service_ca_pair) and is replaced when the command is run again with --force. */
    if (err == RP_OK)
        err = write_pem_file(data_dir, RP_SERVICE_CA_NEXT ".key", 0600, write_key, key);
    if (err == RP_OK)
        err = write_pem_file(data_dir, RP_SERVICE_CA_NEXT ".pem", 0644, write_cert, cert);
    if (err == RP_OK)
        rp_log_info("made the successor service CA %s/%s.pem (%s): copy it and %s.key to every "
                    "replica, then reload them (SIGHUP); devices take it at their next attestation",
                    data_dir, RP_SERVICE_CA_NEXT, cn, RP_SERVICE_CA_NEXT);
    service_cas_free(&c);
    X509_free(cert);
    EVP_PKEY_free(key);
    rp_service_identity_unlock(lock);
    return err;
}

/* data_dir/from renamed to data_dir/to, durably, then a failpoint (named step). */
static rp_err_t promote_move(const char *data_dir, const char *from, const char *to,
                             const char *step)
{
    char a[4096], b[4096];
    rp_err_t err;

    snprintf(a, sizeof(a), "%s/%s", data_dir, from);
    snprintf(b, sizeof(b), "%s/%s", data_dir, to);
    err = rp_rename_durable(a, b);
    if (err != RP_OK)
        rp_log_error("cannot rename %s to %s: %s", a, b, strerror(errno));
    rp_failpoint(step);
    return err;
}

/*
 * The promotion's steps after its mark (SERVICE_CA_PROMOTING), each durable, in an order any cut
 * of which the next start, reload or promote completes (promote_finish): the current CA's
 * certificate kept as RP_SERVICE_CA_OLD.pem (old; NULL: done already), then the successor's key
 * renamed over the current key, then its certificate over the current one; then the mark removed.
 * Between the two renames the current pair is half (the successor's key, the old certificate):
 * the mark says so, and which half is which (the successor's certificate is still there).
 */
static rp_err_t promote_steps(const char *data_dir, X509 *old, bool pem_moved)
{
    char mark[4096];
    rp_err_t err = RP_OK;

    if (old != NULL)
        err = write_pem_file(data_dir, RP_SERVICE_CA_OLD ".pem", 0644, write_cert, old);
    if (err == RP_OK && old != NULL)
        err = promote_move(data_dir, RP_SERVICE_CA_NEXT ".key", RP_SERVICE_CA ".key",
                           "service-ca promote: key moved");
    if (err == RP_OK && !pem_moved)
        err = promote_move(data_dir, RP_SERVICE_CA_NEXT ".pem", RP_SERVICE_CA ".pem",
                           "service-ca promote: certificate moved");
    snprintf(mark, sizeof(mark), "%s/%s", data_dir, SERVICE_CA_PROMOTING);
    /* (a mark whose removal did not reach the disk: the next read finds the moves done) */
    if (err == RP_OK && unlink(mark) != 0 && errno != ENOENT) {
        rp_log_error("cannot remove %s: %s", mark, strerror(errno));
        err = RP_ERR_IO;
    }
    return err;
}

/* A promotion cut short (SERVICE_CA_PROMOTING there), completed from where it was cut: both of the
 * successor's files there (nothing moved yet: the two pairs as they were), its certificate alone
 * (its key moved: the current key must be its), or neither (both moved: the mark left). Anything
 * else is refused (said), never guessed at. Under server.lock. */
static rp_err_t promote_finish(const char *data_dir)
{
    bool key = file_there(data_dir, RP_SERVICE_CA_NEXT ".key"),
         pem = file_there(data_dir, RP_SERVICE_CA_NEXT ".pem");
    X509 *ca = NULL, *next = NULL;
    EVP_PKEY *ca_key = NULL, *next_key = NULL;
    rp_err_t err = RP_OK;

    if (key && pem) {
        err = service_ca_pair(data_dir, RP_SERVICE_CA, false, &ca, &ca_key);
        if (err == RP_OK)
            err = service_ca_pair(data_dir, RP_SERVICE_CA_NEXT, false, &next, &next_key);
        if (err == RP_OK)
            err = promote_steps(data_dir, ca, false);
    } else if (!key && !pem)
        err = promote_steps(data_dir, NULL, true);
    else if (pem && (next = read_cert_file(data_dir, RP_SERVICE_CA_NEXT ".pem")) != NULL &&
             (ca_key = read_key_file(data_dir, RP_SERVICE_CA ".key")) != NULL &&
             X509_check_private_key(next, ca_key) == 1)
        err = promote_steps(data_dir, NULL, false);
    else {
        /* (the successor's key alone, or its certificate beside a current key not its own) */
        rp_log_error("%s/%s is there (a promotion cut short), but %s/%s.pem and %s.key are not "
                     "as a promotion leaves them: put the successor's two files back as %s.pem "
                     "and .key (a copy from another replica), then run rampart-server service-ca "
                     "promote again",
                     data_dir, SERVICE_CA_PROMOTING, data_dir, RP_SERVICE_CA_NEXT, RP_SERVICE_CA,
                     RP_SERVICE_CA_NEXT);
        err = RP_ERR_BAD_KEY;
    }
    ERR_clear_error();
    if (err == RP_OK)
        rp_log_info("completed the promotion of the service CA's successor in %s, cut short "
                    "before (%s)",
                    data_dir, SERVICE_CA_PROMOTING);
    X509_free(ca);
    X509_free(next);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(next_key);
    return err;
}

/* A time as the log gives it. */
static void day_of(int64_t at, char *out, size_t cap)
{
    struct tm tm;

    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&(time_t){(time_t)at}, &tm));
}

/* server.lock for a promotion (rp_service_identity_lock), and, taken, what a promotion cut short
 * (kill -9) left of its own temporaries removed: every writer of them holds it (review r16 L2). */
static int promote_lock(const char *data_dir)
{
    static const char *const names[] = {RP_SERVICE_CA_OLD ".pem", SERVICE_CA_PROMOTING};
    int lock = rp_service_identity_lock(data_dir), n = 0;
    int dir = lock >= 0 ? open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;

    for (size_t i = 0; dir >= 0 && i < sizeof(names) / sizeof(names[0]); i++)
        if (rp_atomic_sweep(dir, names[i], &n) != RP_OK)
            rp_log_warn("%s: temporaries of %s not removed", data_dir, names[i]);
    if (dir >= 0)
        close(dir);
    return lock;
}

rp_err_t rp_service_ca_promote(const char *data_dir, int64_t now, bool force)
{
    struct service_cas c = {0};
    char when[32], path[4096];
    int lock = promote_lock(data_dir);
    bool resumed = lock >= 0 && file_there(data_dir, SERVICE_CA_PROMOTING);
    rp_err_t err = lock >= 0 ? service_cas_read(data_dir, now, &c) : RP_ERR_IO;
    int64_t end = 0, lead = 0, from;

    if (err == RP_OK && resumed) { /* (completed by the read) */
        rp_log_info("the successor is the service CA %s/%s.pem", data_dir, RP_SERVICE_CA);
        goto out;
    }
    if (err == RP_ERR_NOT_FOUND)
        rp_log_error("%s/%s.pem or %s.key is missing: there is no service CA to replace", data_dir,
                     RP_SERVICE_CA, RP_SERVICE_CA);
    if (err == RP_OK && c.next_mismatch)
        err = RP_ERR_BAD_KEY; /* (said) */
    if (err == RP_OK && c.next == NULL && file_there(data_dir, RP_SERVICE_CA_NEXT ".key")) {
        rp_log_error("%s/%s.key is there without %s.pem: copy %s.pem from the replica that made "
                     "it",
                     data_dir, RP_SERVICE_CA_NEXT, RP_SERVICE_CA_NEXT, RP_SERVICE_CA_NEXT);
        err = RP_ERR_BAD_KEY;
    } else if (err == RP_OK && c.next == NULL) {
        rp_log_error("there is no successor (%s/%s.pem) to promote: make one first "
                     "(rampart-server service-ca next)",
                     data_dir, RP_SERVICE_CA_NEXT);
        err = RP_ERR_NOT_FOUND;
    }
    if (err == RP_OK) {
        end = rp_cert_time(X509_get0_notAfter(c.ca));
        lead = rp_service_ca_lead_end(end, rp_cert_time(X509_get0_notBefore(c.next)));
    }
    /* (before the old CA's end the switch's rule holds with --force too: devices have had the
     * successor published for its lead, or the old CA is in its last day) */
    from = force ? lead : end; /* (the earliest promotion) */
    if (err == RP_OK && now < from) {
        day_of(from, when, sizeof(when));
        rp_log_error(force ? "the successor (%s/%s.pem) has not been published for long enough "
                             "yet: devices have until %s to take it at an attestation; promote it "
                             "then at the earliest, even with --force"
                           : "the service CA (%s/%s.pem) is valid until %s: promote its successor "
                             "after that (before, only with --force, once the successor has been "
                             "published 30 days)",
                     data_dir, force ? RP_SERVICE_CA_NEXT : RP_SERVICE_CA, when);
        err = RP_ERR_DENIED;
    }
    if (err == RP_OK) {
        snprintf(path, sizeof(path), "%s/%s", data_dir, SERVICE_CA_PROMOTING);
        err = rp_write_file_atomic(path, "", 0, 0600, 0);
        rp_failpoint("service-ca promote: marked");
    }
    if (err == RP_OK)
        err = promote_steps(data_dir, c.ca, false);
    if (err == RP_OK)
        rp_log_info("the successor is the service CA %s/%s.pem; the one it replaced is kept as "
                    "%s.pem (published while it lasts): do the same on every replica, then "
                    "reload them (SIGHUP)",
                    data_dir, RP_SERVICE_CA, RP_SERVICE_CA_OLD);
out:
    service_cas_free(&c);
    rp_service_identity_unlock(lock);
    return err;
}

rp_err_t rp_master_key_load(const char *path, uint8_t key[RP_MASTER_KEY_LEN])
{
    uint8_t *data;
    size_t len;
    rp_err_t err = rp_read_file(path, 256, &data, &len);

    if (err != RP_OK)
        return err;
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        len--;
    err = rp_hex_decode((const char *)data, len, key, RP_MASTER_KEY_LEN);
    rp_wipe(data, len);
    free(data);
    if (err != RP_OK)
        rp_log_error("%s: not a master key (64 hex digits)", path);
    return err == RP_OK ? RP_OK : RP_ERR_BAD_KEY;
}

rp_err_t rp_master_derive(const uint8_t master[RP_MASTER_KEY_LEN], const char *purpose,
                          uint8_t *out, size_t len)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM params[5];
    rp_err_t err = RP_ERR_CRYPTO;

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0);
    params[1] =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)master, RP_MASTER_KEY_LEN);
    params[2] =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)purpose, strlen(purpose));
    params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, "rampart", 7);
    params[4] = OSSL_PARAM_construct_end();
    if (ctx != NULL && EVP_KDF_derive(ctx, out, len, params) == 1)
        err = RP_OK;
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return err;
}

/* The passphrase PKCS#8 encryption uses: the master key in hex. */
static void master_passphrase(const uint8_t master[RP_MASTER_KEY_LEN],
                              char pass[2 * RP_MASTER_KEY_LEN + 1])
{
    (void)rp_hex_encode(master, RP_MASTER_KEY_LEN, pass, 2 * RP_MASTER_KEY_LEN + 1);
}

rp_err_t rp_key_encrypt_pem(const uint8_t master[RP_MASTER_KEY_LEN], EVP_PKEY *key, char **pem)
{
    char pass[2 * RP_MASTER_KEY_LEN + 1], *data;
    BIO *bio = BIO_new(BIO_s_mem());
    rp_err_t err = RP_OK;
    long len;

    *pem = NULL;
    master_passphrase(master, pass);
    if (bio == NULL || PEM_write_bio_PKCS8PrivateKey(bio, key, EVP_aes_256_cbc(), pass,
                                                     (int)strlen(pass), NULL, NULL) != 1)
        err = openssl_failed("encrypting a key");
    rp_wipe(pass, sizeof(pass));
    if (err == RP_OK) {
        len = BIO_get_mem_data(bio, &data);
        *pem = strndup(data, (size_t)len);
        if (*pem == NULL)
            err = RP_ERR_NO_MEMORY;
    }
    BIO_free(bio);
    return err;
}

rp_err_t rp_key_decrypt_pem(const uint8_t master[RP_MASTER_KEY_LEN], const char *pem,
                            EVP_PKEY **key)
{
    char pass[2 * RP_MASTER_KEY_LEN + 1];
    BIO *bio = BIO_new_mem_buf(pem, -1);

    master_passphrase(master, pass);
    *key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, pass) : NULL;
    BIO_free(bio);
    rp_wipe(pass, sizeof(pass));
    if (*key == NULL) {
        ERR_clear_error();
        return RP_ERR_BAD_KEY;
    }
    return RP_OK;
}

/* The tenant's CA of generation gen, valid from now (back-dated a minute) for RP_CA_LIFETIME.
 * Each generation has a name of its own (the first keeps the name it always had), so that
 * verifiers tell the CAs and their CRLs apart by name as well as by key identifier. */
static rp_err_t create_ca(rp_store_t *s, const uint8_t master[RP_MASTER_KEY_LEN],
                          const rp_tenant_t *tenant, int gen, int64_t now)
{
    char cn[RP_NAME_MAX + 48], org[RP_NAME_MAX + 1];
    rp_ca_record_t rec = {0};
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    rp_err_t err = rp_key_generate(RP_SIG_ECDSA_P256, &key);

    if (gen == 0)
        snprintf(cn, sizeof(cn), "Rampart tenant CA %s", tenant->id);
    else
        snprintf(cn, sizeof(cn), "Rampart tenant CA %s G%d", tenant->id, gen);
    if (err == RP_OK)
        err =
            make_ca_cert(key, cn, rp_name_prefix(tenant->name, RP_NAME_CHARS_MAX, org, sizeof(org)),
                         now, RP_CA_LIFETIME, &cert);
    if (err == RP_OK)
        err = rp_cert_pem(cert, &rec.cert_pem);
    if (err == RP_OK)
        err = rp_key_encrypt_pem(master, key, &rec.key_pem_enc);
    if (err == RP_OK) {
        snprintf(rec.tenant_id, sizeof(rec.tenant_id), "%s", tenant->id);
        rec.generation = gen;
        rec.not_after = now + RP_CA_LIFETIME;
        err = rp_store_ca_put(s, &rec);
        if (err == RP_ERR_EXISTS)
            err = RP_OK; /* made at the same moment elsewhere: theirs is the one */
        else if (err == RP_OK && gen == 0)
            rp_log_info("made the CA of tenant %s", tenant->id);
        else if (err == RP_OK)
            rp_log_info("made the CA of tenant %s, generation %d, to succeed generation %d: "
                        "published from now on, it signs device certificates from %lld days on; "
                        "give it to brokers that trust the tenant CA (rampart ca download)",
                        tenant->id, gen, gen - 1, (long long)(RP_CA_PUBLISH_LEAD / 86400));
    }
    rp_ca_record_free(&rec);
    X509_free(cert);
    EVP_PKEY_free(key);
    return err;
}

/* The device certificate profile (docs/protocol.md), apart from its name and key. */
static const struct {
    int nid;
    const char *value;
} device_exts[] = {
    {NID_basic_constraints,        "critical,CA:FALSE"        },
    {NID_key_usage,                "critical,digitalSignature"},
    {NID_ext_key_usage,            "clientAuth,serverAuth"    },
    {NID_authority_key_identifier, "keyid:always"             },
};

/* A stored CA's life, from its certificate. */
static rp_err_t cert_times(const rp_ca_record_t *rec, int64_t *not_before, int64_t *not_after)
{
    BIO *bio = BIO_new_mem_buf(rec->cert_pem, -1);
    X509 *cert = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

    BIO_free(bio);
    if (cert == NULL) {
        rp_log_error("the CA of tenant %s (generation %d) cannot be read", rec->tenant_id,
                     rec->generation);
        ERR_clear_error();
        return RP_ERR_MALFORMED;
    }
    *not_before = rp_cert_time(X509_get0_notBefore(cert));
    *not_after = rp_cert_time(X509_get0_notAfter(cert));
    X509_free(cert);
    return RP_OK;
}

/* One stored CA: its certificate and its key, which must match. */
static rp_err_t read_ca(const rp_ca_record_t *rec, const uint8_t master[RP_MASTER_KEY_LEN],
                        X509 **cert, EVP_PKEY **key)
{
    BIO *bio = BIO_new_mem_buf(rec->cert_pem, -1);

    *cert = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (rp_key_decrypt_pem(master, rec->key_pem_enc, key) != RP_OK)
        *key = NULL;
    if (*cert == NULL || *key == NULL || X509_check_private_key(*cert, *key) != 1) {
        X509_free(*cert);
        EVP_PKEY_free(*key);
        *cert = NULL;
        *key = NULL;
        rp_log_error("the CA of tenant %s (generation %d) cannot be read: is this the master key "
                     "it was made with?",
                     rec->tenant_id, rec->generation);
        ERR_clear_error();
        return RP_ERR_BAD_KEY;
    }
    return RP_OK;
}

bool rp_ca_rollover_due(int64_t not_before, int64_t not_after, int64_t now)
{
    return now >= not_before + (not_after - not_before) / 3 * 2;
}

int rp_ca_signer(const int64_t *not_before, const int64_t *not_after, int n, int64_t now)
{
    int oldest = -1;

    for (int i = 0; i < n; i++) {
        if (now < not_before[i] || now >= not_after[i])
            continue;
        if (now >= not_before[i] + RP_CA_PUBLISH_LEAD)
            return i;
        oldest = i;
    }
    return oldest;
}

int rp_ca_rollover_basis(const int64_t *not_before, const int64_t *not_after, int n, int64_t now)
{
    for (int i = 0; i < n; i++)
        if (not_before[i] <= now + RP_CA_START_SLACK && now < not_after[i])
            return i;
    return -1;
}

int64_t rp_ca_device_not_after(int64_t ca_not_after, int64_t now)
{
    return now + RP_DEVICE_CERT_LIFETIME < ca_not_after ? now + RP_DEVICE_CERT_LIFETIME
                                                        : ca_not_after;
}

/* What the signing CA repeats in each certificate, and the PEM of every CA, the signer first. */
static rp_err_t ready_signer(rp_ca_t *ca, int signer)
{
    X509V3_CTX ctx;
    X509 *order[RP_CA_LIVE];
    int m = 0;
    rp_err_t err;

    if (signer >= 0)
        order[m++] = ca->certs[signer]; /* the signer first: a device's ca-chain.pem starts with
                                           its issuer */
    for (int k = 0; k < ca->n; k++)
        if (k != signer)
            order[m++] = ca->certs[k];
    err = rp_certs_pem(order, m, &ca->cert_pem);
    if (err != RP_OK)
        return err;
    if (signer < 0)
        return RP_OK;
    ca->signer = signer;
    ca->cert = ca->certs[signer];
    ca->key = ca->keys[signer];
    ca->cert_not_before = ca->not_before[signer];
    ca->cert_not_after = ca->not_after[signer];
    /* The extensions every device certificate carries (the subject alternative name, which
     * names the device, is added per certificate). */
    X509V3_set_ctx(&ctx, ca->cert, NULL, NULL, NULL, 0);
    for (size_t i = 0; i < sizeof(device_exts) / sizeof(device_exts[0]); i++) {
        ca->device_exts[i] =
            X509V3_EXT_conf_nid(NULL, &ctx, device_exts[i].nid, device_exts[i].value);
        if (ca->device_exts[i] == NULL)
            return openssl_failed("device certificate extensions");
    }
    ca->sign_ctx = EVP_MD_CTX_new();
    if (ca->sign_ctx == NULL ||
        EVP_DigestSignInit_ex(ca->sign_ctx, NULL, "SHA256", NULL, NULL, ca->key, NULL) != 1)
        return openssl_failed("the CA's signing context");
    return RP_OK;
}

/* The tenant's CAs from recs (newest first) that have not ended at now, and the signer. */
static rp_err_t load_cas(const rp_ca_record_t *recs, int n, const uint8_t master[RP_MASTER_KEY_LEN],
                         int64_t now, rp_ca_t *ca)
{
    int signer, basis;
    rp_err_t err = RP_OK;

    int64_t later = INT64_MAX; /* when the next CA made by a clock ahead begins to count */

    for (int i = 0; i < n && ca->n < RP_CA_LIVE && err == RP_OK; i++) {
        int k = ca->n;
        if (recs[i].not_after <= now)
            continue; /* ended: neither signs nor is trusted */
        err = read_ca(&recs[i], master, &ca->certs[k], &ca->keys[k]);
        if (err != RP_OK)
            break;
        ca->not_before[k] = rp_cert_time(X509_get0_notBefore(ca->certs[k]));
        ca->not_after[k] = rp_cert_time(X509_get0_notAfter(ca->certs[k]));
        if (ca->not_before[k] > now + RP_CA_START_SLACK) {
            /* made while a clock ran ahead: it verifies and signs nothing now, and must not take
             * the place of one that does */
            if (ca->not_before[k] - RP_CA_START_SLACK < later)
                later = ca->not_before[k] - RP_CA_START_SLACK;
            X509_free(ca->certs[k]);
            EVP_PKEY_free(ca->keys[k]);
            ca->certs[k] = NULL;
            ca->keys[k] = NULL;
            continue;
        }
        ca->n++;
        ca->generation[k] = recs[i].generation;
    }
    signer = err == RP_OK ? rp_ca_signer(ca->not_before, ca->not_after, ca->n, now) : -1;
    if (err == RP_OK)
        err = ready_signer(ca, signer);
    if (err != RP_OK)
        return err;
    /* Read again when the choice changes: at the newest one's rollover, when a successor starts
     * to sign, or when one ends. */
    ca->changes_at = later;
    basis = rp_ca_rollover_basis(ca->not_before, ca->not_after, ca->n, now);
    for (int i = 0; i < ca->n; i++) {
        int64_t at[4] = {ca->not_before[i] + RP_CA_PUBLISH_LEAD, ca->not_after[i],
                         i == basis
                             ? ca->not_before[i] + (ca->not_after[i] - ca->not_before[i]) / 3 * 2
                             : INT64_MAX,
                         ca->not_before[i]};
        for (int j = 0; j < 4; j++)
            if (at[j] > now && at[j] < ca->changes_at)
                ca->changes_at = at[j];
    }
    if (signer < 0)
        rp_log_error("tenant %s has no valid CA (%d stored, none valid now): no device "
                     "certificate is issued until one is",
                     ca->tenant_id, n);
    return RP_OK;
}

rp_err_t rp_ca_get_or_create(rp_store_t *s, const uint8_t master[RP_MASTER_KEY_LEN],
                             const rp_tenant_t *tenant, int64_t now, rp_ca_t *ca)
{
    rp_ca_record_t recs[RP_CA_LISTED];
    bool retry = false;
    int n = 0;
    rp_err_t err;

    memset(ca, 0, sizeof(*ca));
    ca->signer = -1;
    snprintf(ca->tenant_id, sizeof(ca->tenant_id), "%s", tenant->id);
    err = rp_store_ca_list(s, tenant->id, recs, RP_CA_LISTED, &n);
    /* At most two made: the first, or a successor (of an ended one too, then none is left). The
     * rollover is judged on the newest CA that counts now (rp_ca_rollover_basis): one made while
     * a clock ran ahead is passed over, and with none that counts a new one is made, valid now
     * (the next generation: the database keeps one per generation, so replicas agree). */
    for (int made = 0; err == RP_OK && made < 2; made++) {
        int64_t nb[RP_CA_LISTED], na[RP_CA_LISTED];
        int gen = n > 0 ? recs[0].generation + 1 : 0, basis;

        for (int i = 0; i < n && err == RP_OK; i++)
            err = cert_times(&recs[i], &nb[i], &na[i]);
        if (err != RP_OK)
            break;
        basis = rp_ca_rollover_basis(nb, na, n, now);
        if (basis >= 0 && !rp_ca_rollover_due(nb[basis], na[basis], now))
            break;
        if (basis < 0 && n > 0)
            rp_log_warn("tenant %s: none of its CAs counts now (the newest, generation %d, was "
                        "made while a clock ran ahead, or all have ended): making generation %d",
                        tenant->id, recs[0].generation, gen);
        err = create_ca(s, master, tenant, gen, now);
        if (err != RP_OK && n > 0) {
            /* The ones there go on; the rollover is tried again shortly. */
            rp_log_error("tenant %s: cannot make its CA's successor (generation %d): %s",
                         tenant->id, gen, rp_strerror(err));
            err = RP_OK;
            retry = true;
            break;
        }
        for (int i = 0; i < n; i++)
            rp_ca_record_free(&recs[i]);
        n = 0;
        if (err == RP_OK)
            err = rp_store_ca_list(s, tenant->id, recs, RP_CA_LISTED, &n);
    }
    if (err == RP_OK)
        err = load_cas(recs, n, master, now, ca);
    for (int i = 0; i < n; i++)
        rp_ca_record_free(&recs[i]);
    if (err != RP_OK) {
        rp_ca_free(ca);
        return err;
    }
    ca->loaded = now;
    if (retry && ca->changes_at > now + 60)
        ca->changes_at = now + 60;
    return RP_OK;
}

rp_err_t rp_ca_roll_ending(rp_store_t *s, const uint8_t master[RP_MASTER_KEY_LEN], int64_t now,
                           int *rolled)
{
    char ids[RP_CA_SWEEP_MAX][RP_ID_SIZE];
    int n = 0;
    /* Due at two thirds of a life that began back-dated: a few minutes more is what may be
     * picked up early (rp_ca_get_or_create then leaves it, and it is picked up again). */
    rp_err_t err = rp_store_ca_ending(s, now + (RP_CA_LIFETIME + RP_CA_BACKDATE) / 3 + 1, ids,
                                      RP_CA_SWEEP_MAX, &n);

    *rolled = 0;
    for (int i = 0; i < n && err == RP_OK; i++) {
        rp_tenant_t tenant;
        rp_ca_t ca;
        err = rp_store_tenant_get(s, ids[i], &tenant);
        if (err == RP_ERR_NOT_FOUND) { /* deleted meanwhile */
            err = RP_OK;
            continue;
        }
        if (err == RP_OK)
            err = rp_ca_get_or_create(s, master, &tenant, now, &ca);
        if (err == RP_OK) {
            (*rolled)++;
            rp_ca_free(&ca);
        }
    }
    return err;
}

/* The label the master key's check value is derived under (never the key itself is stored). */
#define MASTER_CHECK_LABEL "rampart master key check"
#define MASTER_CHECK_PAGE 64

struct tenant_ids {
    char ids[MASTER_CHECK_PAGE][RP_ID_SIZE];
    int n;
};

static void tenant_id_of(void *ctx, const rp_tenant_t *t)
{
    struct tenant_ids *f = ctx;

    if (f->n < MASTER_CHECK_PAGE)
        snprintf(f->ids[f->n++], RP_ID_SIZE, "%s", t->id);
}

/* Every tenant's CA, a page of tenants at a time: read with master (RP_ERR_BAD_KEY, logged with
 * the tenant, at the first that cannot be), or only counted when master is NULL. OUT: *cas. */
static rp_err_t tenant_cas_read(rp_store_t *s, const uint8_t *master, int *cas)
{
    rp_page_t page = {.paged = true, .limit = MASTER_CHECK_PAGE, .no_upto = true};
    struct tenant_ids f;
    rp_ca_record_t rec;
    rp_err_t err;

    *cas = 0;
    do {
        f.n = 0;
        err = rp_store_tenant_list(s, NULL, &page, tenant_id_of, &f);
        for (int i = 0; err == RP_OK && i < f.n; i++) {
            X509 *cert = NULL;
            EVP_PKEY *key = NULL;

            err = rp_store_ca_get(s, f.ids[i], &rec);
            if (err == RP_ERR_NOT_FOUND) { /* a tenant whose CA is made at its first use */
                err = RP_OK;
                continue;
            }
            if (err != RP_OK)
                break;
            (*cas)++;
            if (master != NULL)
                err = read_ca(&rec, master, &cert, &key); /* logs which tenant's it could not */
            rp_ca_record_free(&rec);
            X509_free(cert);
            EVP_PKEY_free(key);
        }
        if (f.n > 0)
            snprintf(page.after, sizeof(page.after), "%s", f.ids[f.n - 1]);
    } while (err == RP_OK && f.n == MASTER_CHECK_PAGE);
    return err;
}

rp_err_t rp_ca_master_check(rp_store_t *s, const uint8_t master[RP_MASTER_KEY_LEN])
{
    uint8_t mine[RP_MASTER_CHECK_LEN], stored[RP_MASTER_CHECK_LEN];
    bool found = false;
    int cas = 0;
    rp_err_t err = rp_master_derive(master, MASTER_CHECK_LABEL, mine, sizeof(mine));

    if (err == RP_OK)
        err = rp_store_master_check_get(s, stored, &found);
    if (err == RP_OK && !found) {
        /* The first start on this database (or the first since schema 34): the check value is
         * written from the key that reads every tenant's CA, and only then; of two first starts,
         * the first to write wins and the other compares below. */
        err = tenant_cas_read(s, master, &cas);
        if (err == RP_OK)
            err = rp_store_master_check_put(s, mine, stored);
        if (err == RP_OK && rp_ct_memcmp(mine, stored, sizeof(mine)) == 0)
            rp_log_info("the database holds the master key's check value now (from this key, "
                        "which reads its %d tenant CA(s)): a replica with another key is refused",
                        cas);
    }
    if (err == RP_OK && rp_ct_memcmp(mine, stored, sizeof(mine)) != 0)
        err = RP_ERR_BAD_KEY;
    rp_wipe(mine, sizeof(mine));
    return err;
}

rp_err_t rp_ca_master_absent(rp_store_t *s, const char *path)
{
    uint8_t stored[RP_MASTER_CHECK_LEN];
    bool found = false;
    int cas = 0;
    rp_err_t err = rp_store_master_check_get(s, stored, &found);

    if (err == RP_OK && !found)
        err = tenant_cas_read(s, NULL, &cas);
    if (err != RP_OK)
        return err;
    if (!found && cas == 0)
        return RP_OK;
    rp_log_error("%s is missing, and this database already has a master key (%s): copy "
                 "master.key from a replica that serves this database (or from its backup) to "
                 "%s; a new key would read none of its tenants' CA keys (docs/operations.md, "
                 "\"Running several replicas\")",
                 path, found ? "its check value" : "tenant CAs encrypted with it", path);
    return RP_ERR_NOT_FOUND;
}

rp_err_t rp_csr_parse(const uint8_t *data, size_t len, X509_REQ **out)
{
    X509_REQ *req = NULL;
    EVP_PKEY *pub;
    rp_sig_alg_t alg;
    BIO *bio;

    *out = NULL;
    if (data == NULL || len == 0 || len > 16384)
        return RP_ERR_MALFORMED;
    bio = BIO_new_mem_buf(data, (int)len);
    if (bio == NULL)
        return RP_ERR_NO_MEMORY;
    if (len > 10 && memcmp(data, "-----BEGIN", 10) == 0) {
        req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
    } else {
        const unsigned char *p = data;
        req = d2i_X509_REQ(NULL, &p, (long)len);
        if (req != NULL && p != data + len) {
            X509_REQ_free(req);
            req = NULL;
        }
    }
    BIO_free(bio);
    pub = req != NULL ? X509_REQ_get0_pubkey(req) : NULL;
    if (req == NULL || pub == NULL || X509_REQ_verify(req, pub) != 1 ||
        rp_key_alg(pub, &alg) != RP_OK || alg != RP_SIG_ECDSA_P256) {
        X509_REQ_free(req);
        ERR_clear_error();
        return RP_ERR_MALFORMED;
    }
    *out = req;
    return RP_OK;
}

/* subjectAltName with one URI. */
static rp_err_t add_uri_san(X509 *cert, const char *uri)
{
    GENERAL_NAMES *names = GENERAL_NAMES_new();
    GENERAL_NAME *name = GENERAL_NAME_new();
    ASN1_IA5STRING *value = ASN1_IA5STRING_new();
    int ok = names != NULL && name != NULL && value != NULL &&
             ASN1_STRING_set(value, uri, (int)strlen(uri)) == 1;

    if (ok) {
        GENERAL_NAME_set0_value(name, GEN_URI, value);
        value = NULL;
        ok = sk_GENERAL_NAME_push(names, name) > 0;
        if (ok)
            name = NULL;
    }
    ok = ok && X509_add1_ext_i2d(cert, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) == 1;
    ASN1_IA5STRING_free(value);
    GENERAL_NAME_free(name);
    GENERAL_NAMES_free(names);
    return ok ? RP_OK : openssl_failed("subject alternative name");
}

static atomic_ullong signing_refused;

uint64_t rp_ca_signing_refused(void)
{
    return (uint64_t)atomic_load(&signing_refused);
}

int64_t rp_ca_set_version(const rp_ca_t *ca)
{
    int64_t newest = ca->n > 0 ? ca->generation[0] : -1;
    int64_t signer = ca->signer >= 0 && ca->signer < ca->n ? ca->generation[ca->signer] : -1;

    return ((newest + 1) << 32) | ((signer + 1) << 8) | (int64_t)ca->n;
}

X509 *rp_ca_issuer_of(const rp_ca_t *ca, X509 *cert)
{
    for (int i = 0; cert != NULL && i < ca->n; i++)
        if (X509_check_issued(ca->certs[i], cert) == X509_V_OK)
            return ca->certs[i];
    return NULL;
}

rp_err_t rp_ca_issue_device_cert(const rp_ca_t *ca, const uint8_t *spki, size_t spki_len,
                                 const char *device_id, int64_t now, X509 **out,
                                 rp_cert_record_t *record)
{
    uint8_t point[RP_P256_POINT_LEN], *copy;
    char san[128];
    X509 *cert = NULL;
    int64_t not_after;
    rp_err_t err;

    *out = NULL;
    memset(record, 0, sizeof(*record));
    /* Fail closed: an ended CA (or one not yet begun) signs nothing. */
    if (ca->cert == NULL || now < ca->cert_not_before || now >= ca->cert_not_after) {
        atomic_fetch_add(&signing_refused, 1);
        rp_log_error("tenant %s has no CA valid now to sign with: certificate for device %s "
                     "refused (see rampart_tenant_ca_expires_seconds)",
                     ca->tenant_id, device_id);
        return RP_ERR_EXPIRED;
    }
    not_after = rp_ca_device_not_after(ca->cert_not_after, now);
    err = rp_pubkey_p256_point(spki, spki_len, point);
    if (err != RP_OK)
        return err;
    /* Back-dated (RP_DEVICE_CERT_BACKDATE), never before its CA began. */
    err = new_cert(NULL, device_id, NULL, ca->cert,
                   now - RP_DEVICE_CERT_BACKDATE > ca->cert_not_before ? now - RP_DEVICE_CERT_BACKDATE
                                                                       : ca->cert_not_before,
                   not_after, &cert, record->serial);
    /* The key goes in as its point: encoding it from an EVP_PKEY costs OpenSSL 3 more than
     * signing the certificate does. */
    copy = err == RP_OK ? OPENSSL_memdup(point, sizeof(point)) : NULL;
    if (err == RP_OK &&
        (copy == NULL ||
         X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(cert), OBJ_nid2obj(NID_X9_62_id_ecPublicKey),
                                V_ASN1_OBJECT, OBJ_nid2obj(NID_X9_62_prime256v1), copy,
                                sizeof(point)) != 1)) {
        OPENSSL_free(copy);
        err = RP_ERR_CRYPTO;
    }
    for (size_t i = 0; i < sizeof(ca->device_exts) / sizeof(ca->device_exts[0]); i++)
        if (err == RP_OK && X509_add_ext(cert, ca->device_exts[i], -1) != 1)
            err = openssl_failed("certificate extension");
    snprintf(san, sizeof(san), "urn:rampart:device:%s", device_id);
    if (err == RP_OK)
        err = add_uri_san(cert, san);
    if (err == RP_OK)
        err = sign_cert_ready(cert, ca->sign_ctx);
    if (err != RP_OK) {
        X509_free(cert);
        return err;
    }
    snprintf(record->tenant_id, sizeof(record->tenant_id), "%s", ca->tenant_id);
    snprintf(record->device_id, sizeof(record->device_id), "%s", device_id);
    record->not_before = now;
    record->not_after = not_after;
    *out = cert;
    return RP_OK;
}

struct crl_build {
    X509_CRL *crl;
    rp_err_t err;
};

static void add_revoked(void *ctx, const rp_cert_record_t *c)
{
    struct crl_build *b = ctx;
    X509_REVOKED *r;
    BIGNUM *bn = NULL;
    ASN1_INTEGER *serial = NULL;
    ASN1_TIME *when = NULL;

    if (b->err != RP_OK)
        return;
    r = X509_REVOKED_new();
    if (r == NULL || BN_hex2bn(&bn, c->serial) == 0 ||
        (serial = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
        (when = ASN1_TIME_set(NULL, (time_t)c->revoked_at)) == NULL ||
        X509_REVOKED_set_serialNumber(r, serial) != 1 ||
        X509_REVOKED_set_revocationDate(r, when) != 1 || X509_CRL_add0_revoked(b->crl, r) != 1) {
        X509_REVOKED_free(r);
        b->err = RP_ERR_CRYPTO;
    }
    ASN1_TIME_free(when);
    ASN1_INTEGER_free(serial);
    BN_free(bn);
}

static int64_t crl_number(int64_t now)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || (int64_t)ts.tv_sec < now)
        return now * 1000000;
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The CRL of one of the tenant's CAs (cert, key), listing every revoked certificate of the
 * tenant not yet ended: OUT *crl. */
static rp_err_t make_crl(rp_store_t *s, const char *tenant_id, X509 *cert, EVP_PKEY *key,
                         int64_t now, X509_CRL **crl)
{
    struct crl_build b = {X509_CRL_new(), RP_OK};
    ASN1_TIME *last = ASN1_TIME_set(NULL, (time_t)now);
    ASN1_TIME *next = ASN1_TIME_set(NULL, (time_t)(now + RP_CRL_LIFETIME));
    ASN1_INTEGER *number = ASN1_INTEGER_new();
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    rp_err_t err;

    *crl = NULL;
    if (b.crl == NULL || last == NULL || next == NULL || number == NULL ||
        X509_CRL_set_version(b.crl, X509_CRL_VERSION_2) != 1 ||
        X509_CRL_set_issuer_name(b.crl, X509_get_subject_name(cert)) != 1 ||
        X509_CRL_set1_lastUpdate(b.crl, last) != 1 || X509_CRL_set1_nextUpdate(b.crl, next) != 1)
        b.err = RP_ERR_CRYPTO;
    err = b.err == RP_OK ? rp_store_revoked_list(s, tenant_id, add_revoked, &b) : b.err;
    if (err == RP_OK)
        err = b.err;
    /* The CRL number only has to grow: the time it was made, in microseconds, does without a
     * write per CRL (two made within one second, around a revocation, still differ). */
    if (err == RP_OK && (ASN1_INTEGER_set_int64(number, crl_number(now)) != 1 ||
                         X509_CRL_add1_ext_i2d(b.crl, NID_crl_number, number, 0, 0) != 1))
        err = RP_ERR_CRYPTO;
    if (err == RP_OK) {
        X509V3_set_ctx(&ctx, cert, NULL, NULL, b.crl, 0);
        ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
        if (ext == NULL || X509_CRL_add_ext(b.crl, ext, -1) != 1)
            err = RP_ERR_CRYPTO;
        X509_EXTENSION_free(ext);
    }
    if (err == RP_OK && (X509_CRL_sort(b.crl) != 1 || X509_CRL_sign(b.crl, key, EVP_sha256()) <= 0))
        err = RP_ERR_CRYPTO;
    ASN1_TIME_free(last);
    ASN1_TIME_free(next);
    ASN1_INTEGER_free(number);
    ERR_clear_error();
    if (err != RP_OK) {
        X509_CRL_free(b.crl);
        return err;
    }
    *crl = b.crl;
    return RP_OK;
}

rp_err_t rp_ca_crl_of(const rp_ca_t *ca, const char *pem, int generation, bool want_pem,
                      uint8_t **out, size_t *out_len)
{
    const X509_NAME *issuer = NULL;
    BIO *in, *bio = NULL;
    X509_CRL *crl = NULL;
    rp_err_t err = RP_ERR_NOT_FOUND;

    *out = NULL;
    for (int i = 0; i < ca->n; i++)
        if (ca->generation[i] == generation)
            issuer = X509_get_subject_name(ca->certs[i]);
    if (issuer == NULL)
        return RP_ERR_NOT_FOUND;
    /* Picked by its issuer's name (each generation has its own), not by its place. */
    in = BIO_new_mem_buf(pem, -1);
    while (in != NULL && (crl = PEM_read_bio_X509_CRL(in, NULL, NULL, NULL)) != NULL &&
           X509_NAME_cmp(X509_CRL_get_issuer(crl), issuer) != 0) {
        X509_CRL_free(crl);
        crl = NULL;
    }
    BIO_free(in);
    ERR_clear_error(); /* the end of the bundle */
    if (crl != NULL && want_pem) {
        char *data;
        long len;
        bio = BIO_new(BIO_s_mem());
        err = bio != NULL && PEM_write_bio_X509_CRL(bio, crl) == 1 ? RP_OK : RP_ERR_CRYPTO;
        if (err == RP_OK && (len = BIO_get_mem_data(bio, &data)) > 0 &&
            (*out = malloc((size_t)len + 1)) != NULL) {
            memcpy(*out, data, (size_t)len);
            (*out)[len] = '\0';
            *out_len = (size_t)len;
        } else if (err == RP_OK) {
            err = RP_ERR_NO_MEMORY;
        }
        BIO_free(bio);
    } else if (crl != NULL) {
        unsigned char *p = NULL;
        int n = i2d_X509_CRL(crl, &p);
        err = n > 0 ? RP_OK : RP_ERR_CRYPTO;
        if (err == RP_OK && (*out = malloc((size_t)n)) != NULL) {
            memcpy(*out, p, (size_t)n);
            *out_len = (size_t)n;
        } else if (err == RP_OK) {
            err = RP_ERR_NO_MEMORY;
        }
        OPENSSL_free(p);
    }
    X509_CRL_free(crl);
    return err;
}

rp_err_t rp_ca_crls(rp_store_t *s, const rp_ca_t *ca, int64_t now, uint8_t **der, size_t *der_len,
                    char **pem, size_t *pem_len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    unsigned char *p = NULL;
    rp_err_t err = bio != NULL ? RP_OK : RP_ERR_NO_MEMORY;
    char *data;
    long len;
    int n;

    *der = NULL;
    *pem = NULL;
    if (ca->n == 0)
        err = RP_ERR_EXPIRED;
    /* One per live CA, the signer's first (it is also the DER form's). */
    for (int k = 0, first = ca->signer >= 0 ? ca->signer : 0; k < ca->n && err == RP_OK; k++) {
        int i = k == 0 ? first : k - 1 < first ? k - 1 : k;
        X509_CRL *crl;
        err = make_crl(s, ca->tenant_id, ca->certs[i], ca->keys[i], now, &crl);
        if (err != RP_OK)
            break;
        if (k == 0) {
            n = i2d_X509_CRL(crl, &p);
            if (n <= 0 || (*der = malloc((size_t)n)) == NULL)
                err = n <= 0 ? RP_ERR_CRYPTO : RP_ERR_NO_MEMORY;
            else {
                memcpy(*der, p, (size_t)n);
                *der_len = (size_t)n;
            }
            OPENSSL_free(p);
            p = NULL;
        }
        if (err == RP_OK && PEM_write_bio_X509_CRL(bio, crl) != 1)
            err = RP_ERR_CRYPTO;
        X509_CRL_free(crl);
    }
    if (err == RP_OK) {
        len = BIO_get_mem_data(bio, &data);
        *pem = strndup(data, (size_t)len);
        *pem_len = (size_t)len;
        if (*pem == NULL)
            err = RP_ERR_NO_MEMORY;
    }
    BIO_free(bio);
    ERR_clear_error();
    if (err != RP_OK) {
        free(*der);
        free(*pem);
        *der = NULL;
        *pem = NULL;
    }
    return err;
}

/* The one chain check: cert to ca for client authentication, the times checked unless flags
 * says X509_V_FLAG_NO_CHECK_TIME. */
static bool chains_to(X509 *cert, X509 *ca, unsigned long flags)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    bool ok =
        store != NULL && ctx != NULL && X509_STORE_add_cert(store, ca) == 1 &&
        X509_STORE_CTX_init(ctx, store, cert, NULL) == 1 &&
        X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) == 1 &&
        (flags == 0 || X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx), flags) == 1) &&
        X509_verify_cert(ctx) == 1;

    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    ERR_clear_error();
    return ok;
}

bool rp_cert_chains_to(X509 *cert, X509 *ca)
{
    return chains_to(cert, ca, 0);
}

bool rp_cert_chains_to_ended(X509 *cert, X509 *ca, int64_t now, int64_t ended_max)
{
    int64_t cert_nb, cert_na, ca_nb, ca_na;

    if (cert == NULL || ca == NULL || ended_max < 0)
        return false;
    cert_nb = rp_cert_time(X509_get0_notBefore(cert));
    cert_na = rp_cert_time(X509_get0_notAfter(cert));
    ca_nb = rp_cert_time(X509_get0_notBefore(ca));
    ca_na = rp_cert_time(X509_get0_notAfter(ca));
    /* Times unreadable (0); the CA not valid now; the certificate not begun, not ended, or ended
     * longer ago than ended_max: refused. */
    if (cert_nb <= 0 || cert_na <= 0 || ca_nb <= 0 || ca_na <= 0 || now < ca_nb || now >= ca_na ||
        now < cert_nb || now < cert_na || now - cert_na > ended_max)
        return false;
    return chains_to(cert, ca, X509_V_FLAG_NO_CHECK_TIME);
}

void rp_cert_serial_hex(X509 *cert, char out[RP_SERIAL_SIZE])
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *h = bn != NULL ? BN_bn2hex(bn) : NULL;

    out[0] = '\0';
    if (h != NULL) {
        for (size_t i = 0; h[i] != '\0'; i++)
            h[i] = (char)(h[i] >= 'A' && h[i] <= 'F' ? h[i] - 'A' + 'a' : h[i]);
        snprintf(out, RP_SERIAL_SIZE, "%s", h);
    }
    OPENSSL_free(h);
    BN_free(bn);
}
