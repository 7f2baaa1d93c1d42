/*
 * A certificate's time (its notBefore or notAfter), read by OpenSSL: the one reading the agent
 * (its device certificate) and the service (its CAs, its TLS certificate) share.
 */
#ifndef RAMPART_CERT_TIME_H
#define RAMPART_CERT_TIME_H

#include <stdint.h>

#include <openssl/asn1.h>

/* t (a UTCTime or a GeneralizedTime) in seconds since the epoch, or 0 when there is none, when
 * OpenSSL cannot read it, or when it is not after the epoch: every caller takes 0 as "no time",
 * which fails closed (an end of 0 has passed; a start of 0 is refused where it matters). */
int64_t rp_cert_time(const ASN1_TIME *t);

#endif /* RAMPART_CERT_TIME_H */
