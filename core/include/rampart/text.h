/*
 * The one rule for what a sentence a device sends for people may hold: no control character,
 * neither ASCII's (C0, DEL) nor Unicode's C1 (U+0080-U+009F, "\xc2\x80"-"\xc2\x9f" in UTF-8). Such
 * text is printed to operators' terminals (`rampart event list`), where an escape sequence or a
 * newline would act or forge a line. The service refuses a report's reason that breaks it
 * (server/device/reports.c), the device's queue refuses it before sending (device/agent/reportq.c) and
 * the agent's own messages are cleaned with it: both sides call this, so they always agree.
 *
 * Also the one check of well-formed UTF-8, which the service asks of every path segment (so that a
 * database that holds UTF-8 only never sees other text) and its store of every text it looks up.
 *
 * Freestanding, like the rest of the core.
 */
#ifndef RAMPART_TEXT_H
#define RAMPART_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The length of the control character s starts with: 1 for C0 (but NUL: the end) or DEL, 2 for
 * a C1 in UTF-8; 0 when s starts with none. */
size_t rp_text_control_at(const char *s);

/* Whether the NUL-terminated s holds no control character. */
bool rp_text_no_controls(const char *s);

/* Whether the NUL-terminated s is well-formed UTF-8 (RFC 3629): shortest forms only, no
 * surrogates, nothing above U+10FFFF. */
bool rp_text_utf8_valid(const char *s);

#ifdef __cplusplus
}
#endif

#endif /* RAMPART_TEXT_H */
