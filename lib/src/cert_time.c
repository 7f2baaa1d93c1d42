/*
 * A certificate's time through OpenSSL (ASN1_TIME_to_tm parses and checks it; nothing here reads
 * its bytes).
 */
#include <time.h>

#include <openssl/err.h>

#include "rampart/cert_time.h"

int64_t rp_cert_time(const ASN1_TIME *t)
{
    struct tm tm;
    time_t s;

    /* NULL first: ASN1_TIME_to_tm(NULL) would give the time now */
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) {
        ERR_clear_error();
        return 0;
    }
    s = timegm(&tm);
    return s > 0 ? (int64_t)s : 0;
}
