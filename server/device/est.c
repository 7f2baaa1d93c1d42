/*
 * Enrollment over Secure Transport (RFC 7030), where it fits Rampart's flow:
 *   GET  /.well-known/est/TENANT/cacerts         the tenant's CAs, as a certs-only PKCS#7
 *   POST /.well-known/est/TENANT/simplereenroll  a new 24-hour certificate for the same key,
 *        over mutual TLS with the device's current certificate, for a device that is claimed,
 *        not blocked, and passed an attestation within the last 24 hours.
 * First enrollment is attestation (/api/v1/attest): a certificate is never issued on a request
 * alone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#include "context.h"
#include "est.h"
#include "rampart/base64.h"
#include "rampart/log.h"
#include "req.h"
#include "routes.h"

/* Reply with certs-only PKCS#7 (DER, base64), as EST returns certificates. */
static void reply_pkcs7(rp_req_t *r, X509 *const *certs, int count)
{
    PKCS7 *p7 = PKCS7_new();
    unsigned char *der = NULL;
    char *b64 = NULL;
    int n = -1, added = 0;

    if (p7 != NULL && PKCS7_set_type(p7, NID_pkcs7_signed) == 1 &&
        PKCS7_content_new(p7, NID_pkcs7_data) == 1) {
        while (added < count && PKCS7_add_certificate(p7, certs[added]) == 1)
            added++;
        if (added == count)
            n = i2d_PKCS7(p7, &der);
    }
    PKCS7_free(p7);
    if (n <= 0 || rp_base64_encode(der, (size_t)n, &b64) != RP_OK) {
        OPENSSL_free(der);
        ERR_clear_error();
        rp_reply_error(r, 500, "internal", "cannot encode the certificates");
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "Content-Transfer-Encoding",
                      "base64");
    rp_reply_bytes(r, 200, "application/pkcs7-mime; smime-type=certs-only", b64, strlen(b64));
    OPENSSL_free(der);
    free(b64);
}

static void refuse(rp_req_t *r, rp_reissue_t why)
{
    switch (why) {
    case RP_REISSUE_BLOCKED: rp_reply_error(r, 403, "blocked", "the device is blocked"); break;
    case RP_REISSUE_ATTESTATION_REQUIRED:
        rp_reply_error(r, 403, "attestation_required",
                       "the device has not passed an attestation in the last 24 hours");
        break;
    default:
        rp_reply_error(r, 403, "forbidden",
                       "the certificate is not a current device certificate of this tenant");
    }
}

/* The route (RP_AUTH_DEVICE) has checked the caller: a current, unrevoked certificate of this
 * tenant's CA, for a device the tenant holds and has not blocked (r->device). */
static void simplereenroll(rp_req_t *r, const rp_ca_t *ca)
{
    X509 *peer = rp_req_peer_cert(r), *cert = NULL;
    const rp_device_t *device = &r->device;
    const char *device_id = device->id;
    char serial[RP_SERIAL_SIZE];
    int64_t now = (int64_t)time(NULL);
    X509_REQ *csr = NULL;
    rp_cert_record_t rec;
    rp_reissue_t outcome;
    int64_t retry_after;
    uint8_t *der = NULL, spki[RP_PUBKEY_DER_MAX], *p = spki;
    size_t len, der_len;
    int spki_len;
    const uint8_t *body;

    /* Each re-enrollment is a signature and a write transaction: a device gets a few an hour
     * (--reenroll-per-hour; a client renewing a 24-hour certificate needs one a day). This
     * replica's bucket is the first gate, in memory, sparing the database a device's flood; the
     * transaction that records the certificate counts the device's re-enrollments of the last
     * hour again, in the database, so that replicas together give no more. */
    if (!rp_device_rate_allowed(r, r->w->srv->reenroll_limit,
                                atomic_load(&r->w->srv->reenroll_retry),
                                "this device re-enrolls faster than its limit "
                                "(--reenroll-per-hour): retry after the Retry-After seconds")) {
        atomic_fetch_add(&r->w->srv->metrics.limited_reenroll, 1);
        return;
    }
    rp_cert_serial_hex(peer, serial);
    /* Refused early when it can be (no CSR parsed, nothing signed); rp_store_cert_reissue()
     * checks all of it again when it records the certificate. */
    if (!device->last_passed || device->last_attested_at + RP_DEVICE_CERT_LIFETIME < now) {
        refuse(r, RP_REISSUE_ATTESTATION_REQUIRED);
        return;
    }
    body = rp_req_body(r, &len);
    if (body == NULL)
        return;
    if (rp_base64_decode((const char *)body, len, &der, &der_len) != RP_OK ||
        rp_csr_parse(der, der_len, &csr) != RP_OK) {
        free(der);
        rp_reply_error(r, 400, "malformed_csr", "the body must be a base64 DER PKCS#10 request");
        return;
    }
    free(der);
    if (EVP_PKEY_eq(X509_REQ_get0_pubkey(csr), X509_get0_pubkey(peer)) != 1) {
        X509_REQ_free(csr);
        ERR_clear_error();
        rp_reply_error(r, 403, "forbidden", "re-enrollment keeps the device's key");
        return;
    }
    /* The key is the one the CSR proved equal to, issued as the current certificate encodes it
     * (the tenant CA made it: canonical, an uncompressed point), not as the CSR wrote it: a
     * compressed point of the same key is the same key. */
    spki_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(peer), NULL);
    if (spki_len > 0 && (size_t)spki_len <= sizeof(spki))
        spki_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(peer), &p);
    else
        spki_len = -1;
    if (spki_len <= 0 ||
        rp_ca_issue_device_cert(ca, spki, (size_t)spki_len, device_id, now, &cert, &rec) != RP_OK ||
        rp_store_cert_reissue(r->w->store, &rec, serial, now - RP_DEVICE_CERT_LIFETIME,
                              atomic_load(&r->w->srv->reenroll_per_hour), &outcome,
                              &retry_after) != RP_OK) {
        X509_REQ_free(csr);
        X509_free(cert);
        rp_reply_error(r, 500, "internal", "cannot issue the certificate");
        return;
    }
    X509_REQ_free(csr);
    /* What the checks above read may have changed before the certificate was recorded: the
     * transaction that records it checked again, and decides. */
    if (outcome == RP_REISSUE_LIMITED) {
        /* Other replicas (whose buckets this one's does not see) spent the device's hour. */
        X509_free(cert);
        atomic_fetch_add(&r->w->srv->metrics.limited_reenroll, 1);
        rp_reply_rate_limited(r, (int)retry_after,
                              "this device re-enrolls faster than its limit (--reenroll-per-hour, "
                              "counted across replicas): retry after the Retry-After seconds");
        return;
    }
    if (outcome != RP_REISSUE_DONE) {
        X509_free(cert);
        refuse(r, outcome);
        return;
    }
    atomic_fetch_add(&r->w->srv->metrics.certificates_issued, 1);
    rp_log_info("device %.16s… re-enrolled: certificate %s", device_id, rec.serial);
    reply_pkcs7(r, &cert, 1);
    X509_free(cert);
}

void rp_h_est_cacerts(rp_req_t *r)
{
    const rp_ca_t *ca;

    /* Every CA of the tenant's that is valid: during a rollover, the one that signs and the one
     * whose certificates are still in use (RFC 7030 4.1.3: the current CA certificates). */
    if (rp_worker_ca(r->w, &r->tenant, &ca) != RP_OK || ca->n == 0)
        rp_reply_error(r, 500, "internal", "cannot read the tenant CA");
    else
        reply_pkcs7(r, ca->certs, ca->n);
}

void rp_h_est_simplereenroll(rp_req_t *r)
{
    const rp_ca_t *ca;

    if (rp_worker_ca(r->w, &r->tenant, &ca) != RP_OK)
        rp_reply_error(r, 500, "internal", "cannot read the tenant CA");
    else
        simplereenroll(r, ca);
}
