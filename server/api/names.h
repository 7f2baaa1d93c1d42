/*
 * The names operators give things (tenants, products, device groups, image keys): the one rule
 * they must meet, the keys their uniqueness is decided on, and the form they are looked up in. A
 * name goes into the tenant CA's subject (X.509 O: at most 64 characters), URL path segments
 * (products and groups are reached by name), JSON, logs and terminals; the rule is what all of
 * these take, checked once, at creation.
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
 * refused), and has keys that fit (rp_name_keys). OUT: out (NFC, NUL-terminated; cap at least
 * RP_NAME_MAX + 1); on refusal *why says what is wrong, to follow the word "name" ("must not end
 * with a space"), and the result is RP_ERR_INVALID_ARG.
 */
rp_err_t rp_name_check(const char *name, size_t len, char *out, size_t cap,
                       const char **why) RP_MUST_CHECK;

/* A JSON value as a name: a string that rp_name_check() accepts (a NUL inside counts). Returns
 * the string as given (the store keeps its NFC form), or NULL with *why set. */
const char *rp_name_json(json_t *v, const char **why);

/*
 * The keys two names collide on: two names may not stand side by side in one scope when either
 * of their keys is the same. Both are made by UTS #39 skeletons and case folding, from the
 * name's compatibility form (NFKC: fullwidth, ligatures and styled letters as plain ones), in two
 * orders, because neither order alone catches every look-alike:
 * - folded: fold case first, then take the skeleton. "Ilya" meets "ilya" ("I" and "i" differ,
 *   but not once folded) and "STRASSE" meets "Straße"; "acme", "ACME", "Ａｃｍｅ" and "аcme"
 *   meet too.
 * - as_written: take the skeleton of the letters as written, then fold. Capitals that look like
 *   Latin capitals have those as prototypes, while their lowercase forms look like nothing Latin
 *   (Cyrillic "М" is "M", its "м" is not "m"), and "I" looks like "l" only as a capital: so
 *   Cyrillic "АСМЕ" meets "ACME" and "acme", Greek "ΚΕΥ" meets "KEY", "AIice" meets "Alice".
 * Each is then settled: skeleton and fold again until nothing changes, since a prototype may have
 * case of its own ("0" becomes "O", which must meet the "o" of "login") and a folded letter may
 * have a prototype ("m" is "rn"). Stores keep both beside the name, each with a UNIQUE constraint.
 */
typedef struct {
    char folded[RP_NAME_KEY_MAX];
    char as_written[RP_NAME_KEY_MAX];
} rp_name_keys_t;

/* OUT: keys; RP_ERR_INVALID_ARG when the name is not valid UTF-8, holds nothing but ignorable
 * characters, or a key would not fit. (Made for any stored name, even one the rule refuses now.) */
rp_err_t rp_name_keys(const char *name, rp_name_keys_t *keys) RP_MUST_CHECK;

/*
 * The form in which a name given to find something (a path segment, a JSON field) is looked up:
 * its NFC, the form names are kept in, so that the same name in other bytes (NFD: "e" and U+0301)
 * finds it. Only normalised, not checked: names kept before the rule are found as well.
 * OUT: out (cap bytes, NUL-terminated); RP_ERR_INVALID_ARG when it is not valid UTF-8 or its NFC
 * does not fit (no name kept is that long): look it up as given then, to find IDs.
 */
rp_err_t rp_name_lookup_form(const char *given, char *out, size_t cap) RP_MUST_CHECK;

/*
 * The longest start of name that is well-formed UTF-8 (no overlong form, no surrogate) and at
 * most max_chars characters: what goes where a name must fit (a tenant CA's subject O, for a
 * tenant named before the rule). OUT: out (cap bytes, NUL-terminated). NULL when nothing fits.
 */
const char *rp_name_prefix(const char *name, size_t max_chars, char *out, size_t cap);

#endif /* RAMPART_NAMES_H */
