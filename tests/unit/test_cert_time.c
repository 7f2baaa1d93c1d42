/*
 * rp_cert_time (lib/src/cert_time.c): a certificate's notBefore and notAfter, made and signed by
 * OpenSSL here and read back from its DER, in either encoding (UTCTime, GeneralizedTime) and on
 * either side of 2050 (RFC 5280: UTCTime's years 50-99 are 1950-1999); a time OpenSSL cannot
 * read, or none, is 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "rampart/cert_time.h"

static EVP_PKEY *key;

/* A time of encoding type (V_ASN1_UTCTIME or V_ASN1_GENERALIZEDTIME) holding s as it is: a
 * malformed one too, which only the reader refuses. */
static ASN1_TIME *time_of(int type, const char *s)
{
    ASN1_TIME *t = ASN1_STRING_type_new(type);

    assert_non_null(t);
    assert_int_equal(ASN1_STRING_set(t, s, (int)strlen(s)), 1);
    return t;
}

/* A self-signed certificate with these times, through its DER: what a reader of a file sees. */
static X509 *cert_with(int nb_type, const char *nb, int na_type, const char *na)
{
    X509 *c = X509_new(), *back;
    X509_NAME *name = X509_NAME_new();
    ASN1_TIME *t;
    unsigned char *der = NULL;
    const unsigned char *p;
    int len;

    assert_non_null(c);
    assert_non_null(name);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                (const unsigned char *)"cert-time", -1, -1, 0),
                     1);
    assert_int_equal(X509_set_version(c, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(c), 7), 1);
    assert_int_equal(X509_set_subject_name(c, name), 1);
    assert_int_equal(X509_set_issuer_name(c, name), 1);
    assert_int_equal(X509_set_pubkey(c, key), 1);
    t = time_of(nb_type, nb);
    assert_int_equal(X509_set1_notBefore(c, t), 1);
    ASN1_TIME_free(t);
    t = time_of(na_type, na);
    assert_int_equal(X509_set1_notAfter(c, t), 1);
    ASN1_TIME_free(t);
    assert_true(X509_sign(c, key, EVP_sha256()) > 0);
    len = i2d_X509(c, &der);
    assert_true(len > 0);
    p = der;
    back = d2i_X509(NULL, &p, len);
    assert_non_null(back);
    assert_int_equal(ASN1_STRING_type(X509_get0_notBefore(back)), nb_type);
    assert_int_equal(ASN1_STRING_type(X509_get0_notAfter(back)), na_type);
    OPENSSL_free(der);
    X509_NAME_free(name);
    X509_free(c);
    return back;
}

static void check(int nb_type, const char *nb, int64_t nb_want, int na_type, const char *na,
                  int64_t na_want)
{
    X509 *c = cert_with(nb_type, nb, na_type, na);

    assert_int_equal(rp_cert_time(X509_get0_notBefore(c)), nb_want);
    assert_int_equal(rp_cert_time(X509_get0_notAfter(c)), na_want);
    X509_free(c);
}

static void test_utc_and_generalized(void **state)
{
    (void)state;
    check(V_ASN1_UTCTIME, "261129000000Z", 1795910400, V_ASN1_GENERALIZEDTIME, "99991231235959Z",
          253402300799);
    check(V_ASN1_GENERALIZEDTIME, "20261129000000Z", 1795910400, V_ASN1_UTCTIME, "700101000001Z",
          1);
}

static void test_2049_2050(void **state)
{
    (void)state;
    /* the last second UTCTime says, the first GeneralizedTime must */
    check(V_ASN1_UTCTIME, "491231235959Z", 2524607999, V_ASN1_GENERALIZEDTIME, "20500101000000Z",
          2524608000);
    check(V_ASN1_GENERALIZEDTIME, "20491231235959Z", 2524607999, V_ASN1_GENERALIZEDTIME,
          "20500101000001Z", 2524608001);
    /* UTCTime 50 is 1950, not 2050: before the epoch, so no time (an end long passed) */
    check(V_ASN1_UTCTIME, "500101000000Z", 0, V_ASN1_UTCTIME, "991231235959Z", 946684799);
    check(V_ASN1_UTCTIME, "700101000000Z", 0, V_ASN1_GENERALIZEDTIME, "19691231235959Z", 0);
}

static void test_malformed_refused(void **state)
{
    (void)state;
    /* each beside a good one, which is still read */
    check(V_ASN1_UTCTIME, "491231235959", 0, V_ASN1_UTCTIME, "491231235959Z", 2524607999);
    check(V_ASN1_UTCTIME, "491331235959Z", 0, V_ASN1_UTCTIME, "491231235959Z", 2524607999);
    check(V_ASN1_UTCTIME, "4912312359591Z", 0, V_ASN1_UTCTIME, "491232235959Z", 0);
    check(V_ASN1_GENERALIZEDTIME, "2049123123595Z", 0, V_ASN1_GENERALIZEDTIME, "2O491231235959Z",
          0);
    check(V_ASN1_UTCTIME, "", 0, V_ASN1_GENERALIZEDTIME, "20490230000000Z", 0);
}

static void test_none(void **state)
{
    (void)state;
    assert_int_equal(rp_cert_time(NULL), 0); /* not the time now, as ASN1_TIME_to_tm would say */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utc_and_generalized),
        cmocka_unit_test(test_2049_2050),
        cmocka_unit_test(test_malformed_refused),
        cmocka_unit_test(test_none),
    };
    int rc;

    key = EVP_EC_gen("P-256");
    if (key == NULL)
        return 1;
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    EVP_PKEY_free(key);
    return rc;
}
