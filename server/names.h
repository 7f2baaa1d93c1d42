/*
 * The names operators give things (tenants, products, device groups, image keys): the one rule
 * they must meet, and the key their uniqueness is decided on. A name goes into the tenant CA's
 * subject (X.509 O: at most 64 characters), URL path segments (products and groups are reached by
 * name), JSON, logs and terminals; the rule is what all of these take, checked once, at creation.
 * (Component names are another rule: a device measures them; see the core.)
 */
#ifndef RAMPART_NAMES_H
#define RAMPART_NAMES_H

#include <stddef.h>

#include <jansson.h>

#include "rampart/error.h"
#include "store.h"

#define RP_NAME_CHARS_MAX 64 /* characters (code points, in NFC): X.509's ub-organization-name */
#define RP_NAME_KEY_MAX 1024 /* bytes of a name's key, with its NUL */

/*
 * Check a name of len bytes and make its canonical form. It must be valid UTF-8 without NUL;
 * in Unicode NFC it is 1 to RP_NAME_CHARS_MAX characters and at most RP_NAME_MAX bytes, holds
 * no control, format (e.g. U+202E, U+200B), line or paragraph separator, private-use, surrogate
 * or unassigned character, no space but U+0020 and that never first, last or twice in a row, no
 * '/', is not "." or "..", does not look like an ID ("x_" and 24 hex digits), and does not mix
 * scripts the way spoofs do (UTS #39 moderately restrictive: Latin with Cyrillic or Greek is
 * refused). OUT: out (NFC, NUL-terminated; cap at least RP_NAME_MAX + 1); on refusal *why says
 * what is wrong, to follow the word "name" ("must not end with a space"), and the result is
 * RP_ERR_INVALID_ARG.
 */
rp_err_t rp_name_check(const char *name, size_t len, char *out, size_t cap,
                       const char **why) RP_MUST_CHECK;

/* A JSON value as a name: a string that rp_name_check() accepts (a NUL inside counts). Returns
 * the string as given (the store keeps its NFC form), or NULL with *why set. */
const char *rp_name_json(json_t *v, const char **why);

/*
 * The key two names collide on: the UTS #39 skeleton of the name's NFKC case fold, so that
 * "acme", "ACME", "Ａｃｍｅ" and "аcme" (Cyrillic а) have one key, and so do "rn" and "m". Stores
 * keep it beside the name with a UNIQUE constraint. OUT: key; RP_ERR_INVALID_ARG when the name is
 * not valid UTF-8 or its key would not fit.
 */
rp_err_t rp_name_key(const char *name, char key[RP_NAME_KEY_MAX]) RP_MUST_CHECK;

#endif /* RAMPART_NAMES_H */
