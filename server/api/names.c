/*
 * The rule for operators' names, the keys their uniqueness is decided on and the form they are
 * looked up in (names.h), with ICU: normalisation (NFC, NFKC, NFKC case fold), character
 * properties, and the UTS #39 spoof checker and skeletons. Nothing else in Rampart decides what a
 * name may be, nor when two are the same.
 */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/uspoof.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>
#include <unicode/utf8.h>

#include "names.h"
#include "rampart/log.h"

/* Bounds on the work one name costs: longer input is refused before any conversion. */
#define NAME_INPUT_MAX (4 * RP_NAME_MAX)
#define NAME_UTF16_MAX (2 * NAME_INPUT_MAX)

/* One checker for the process: its checks are thread-safe once configured (ICU's USpoofChecker
 * documentation), and opening one loads the confusables data. */
static pthread_once_t checker_once = PTHREAD_ONCE_INIT;
static USpoofChecker *checker;

static void checker_open(void)
{
    UErrorCode e = U_ZERO_ERROR;
    USpoofChecker *sc = uspoof_open(&e);

    uspoof_setChecks(sc, USPOOF_RESTRICTION_LEVEL | USPOOF_INVISIBLE | USPOOF_MIXED_NUMBERS, &e);
    uspoof_setRestrictionLevel(sc, USPOOF_MODERATELY_RESTRICTIVE);
    if (U_FAILURE(e)) {
        rp_log_error("names: cannot open ICU's spoof checker: %s", u_errorName(e));
        uspoof_close(sc);
        return;
    }
    checker = sc;
}

static const USpoofChecker *spoof_checker(void)
{
    pthread_once(&checker_once, checker_open);
    return checker;
}

/* UTF-8 (len bytes) to UTF-16; false when ill-formed or too long. */
static bool to_utf16(const char *s, size_t len, UChar *out, int32_t cap, int32_t *n)
{
    UErrorCode e = U_ZERO_ERROR;

    u_strFromUTF8(out, cap, n, s, (int32_t)len, &e);
    return U_SUCCESS(e) && e != U_STRING_NOT_TERMINATED_WARNING && *n < cap;
}

static bool normalize(const UNormalizer2 *form, const UChar *in, int32_t n, UChar *out, int32_t cap,
                      int32_t *m)
{
    UErrorCode e = U_ZERO_ERROR;

    *m = unorm2_normalize(form, in, n, out, cap, &e);
    return U_SUCCESS(e) && e != U_STRING_NOT_TERMINATED_WARNING && *m < cap;
}

/* UTF-8 (len bytes) to NFC in UTF-16, as names are kept and looked up: NULL, or what is wrong
 * (to follow "name"). */
static const char *to_nfc(const char *s, size_t len, UChar nfc[NAME_UTF16_MAX], int32_t *m)
{
    UChar in16[NAME_UTF16_MAX];
    UErrorCode e = U_ZERO_ERROR;
    const UNormalizer2 *form = unorm2_getNFCInstance(&e);
    int32_t n;

    if (len > NAME_INPUT_MAX || !to_utf16(s, len, in16, NAME_UTF16_MAX, &n))
        return "must be valid UTF-8";
    if (U_FAILURE(e) || !normalize(form, in16, n, nfc, NAME_UTF16_MAX, m))
        return "cannot be checked (the service lacks its Unicode data)";
    return NULL;
}

/* What must not be in a name, whatever else it holds. */
static const char *character_refused(UChar32 c)
{
    switch (u_charType(c)) {
    case U_CONTROL_CHAR: return "must not hold control characters";
    case U_FORMAT_CHAR:
        return "must not hold format characters (such as U+202E, which turns text around, or "
               "U+200B, which is invisible)";
    case U_LINE_SEPARATOR:
    case U_PARAGRAPH_SEPARATOR: return "must not hold line or paragraph separators";
    case U_PRIVATE_USE_CHAR: return "must not hold private-use characters";
    case U_SURROGATE: return "must not hold surrogates";
    case U_UNASSIGNED: return "must not hold unassigned characters";
    case U_SPACE_SEPARATOR:
        return c == 0x20 ? NULL : "must use only the plain space (U+0020) between words";
    default: break;
    }
    /* Invisible by definition (variation selectors, the Hangul filler...): a name with one looks
     * like the name without it. */
    if (u_hasBinaryProperty(c, UCHAR_DEFAULT_IGNORABLE_CODE_POINT))
        return "must not hold invisible (default-ignorable) characters";
    return c == '/' ? "must not hold '/' (names are used in paths)" : NULL;
}

/* "x_" and 24 hex digits: what IDs look like; such a name would be taken for one in paths. */
static bool looks_like_id(const char *s)
{
    if (strlen(s) != 26 || s[0] < 'a' || s[0] > 'z' || s[1] != '_')
        return false;
    for (size_t i = 2; i < 26; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

rp_err_t rp_name_check(const char *name, size_t len, char *out, size_t cap, const char **why)
{
    UChar nfc[NAME_UTF16_MAX];
    const USpoofChecker *sc = spoof_checker();
    UErrorCode e = U_ZERO_ERROR;
    int32_t m, chars = 0, bytes;
    bool space_before = false;
    UChar32 c = 0;

    *why = "is refused";
    if (out == NULL || cap < RP_NAME_MAX + 1)
        return RP_ERR_INVALID_ARG;
    out[0] = '\0';
    if (name == NULL || len == 0) {
        *why = "must not be empty";
        return RP_ERR_INVALID_ARG;
    }
    if (len > NAME_INPUT_MAX) {
        *why = "must be at most 64 characters (128 bytes of UTF-8)";
        return RP_ERR_INVALID_ARG;
    }
    if (memchr(name, '\0', len) != NULL) {
        *why = "must not hold NUL characters";
        return RP_ERR_INVALID_ARG;
    }
    if ((*why = to_nfc(name, len, nfc, &m)) != NULL)
        return RP_ERR_INVALID_ARG;
    if (sc == NULL) {
        *why = "cannot be checked (the service lacks its Unicode data)";
        return RP_ERR_INVALID_ARG;
    }
    for (int32_t i = 0; i < m;) {
        U16_NEXT(nfc, i, m, c);
        if ((*why = character_refused(c)) != NULL)
            return RP_ERR_INVALID_ARG;
        if (chars == 0 && (U_GET_GC_MASK(c) & U_GC_M_MASK) != 0) {
            *why = "must not start with a combining mark";
            return RP_ERR_INVALID_ARG;
        }
        if (c == ' ' && (chars == 0 || space_before)) {
            *why = chars == 0 ? "must not start with a space" : "must not hold two spaces in a row";
            return RP_ERR_INVALID_ARG;
        }
        space_before = c == ' ';
        chars++;
    }
    if (space_before) {
        *why = "must not end with a space";
        return RP_ERR_INVALID_ARG;
    }
    if (chars > RP_NAME_CHARS_MAX) {
        *why = "must be at most 64 characters (128 bytes of UTF-8)";
        return RP_ERR_INVALID_ARG;
    }
    u_strToUTF8(out, (int32_t)cap, &bytes, nfc, m, &e);
    if (U_FAILURE(e) || e == U_STRING_NOT_TERMINATED_WARNING || bytes > RP_NAME_MAX) {
        out[0] = '\0';
        *why = "must be at most 64 characters (128 bytes of UTF-8)";
        return RP_ERR_INVALID_ARG;
    }
    if (strcmp(out, ".") == 0 || strcmp(out, "..") == 0) {
        out[0] = '\0';
        *why = "must not be \".\" or \"..\" (names are used in paths)";
        return RP_ERR_INVALID_ARG;
    }
    if (looks_like_id(out)) {
        out[0] = '\0';
        *why = "must not look like an ID (a letter, '_' and 24 hex digits)";
        return RP_ERR_INVALID_ARG;
    }
    if (uspoof_check2(sc, nfc, m, NULL, &e) != 0 || U_FAILURE(e)) {
        out[0] = '\0';
        *why = "must not mix scripts the way look-alikes do (e.g. Latin with Cyrillic or Greek), "
               "nor hide characters or mix digits of several systems";
        return RP_ERR_INVALID_ARG;
    }
    /* Uniqueness is decided on the keys: a name must have them. Some characters stand for whole
     * phrases (U+FDFA is 18 letters in NFKC), and a name of those has keys too long to keep. */
    {
        rp_name_keys_t keys;
        if (rp_name_keys(out, &keys) != RP_OK) {
            out[0] = '\0';
            *why = "is too long once its characters are spelt out (some, such as U+FDFA, stand "
                   "for whole words)";
            return RP_ERR_INVALID_ARG;
        }
    }
    *why = NULL;
    return RP_OK;
}

const char *rp_name_json(json_t *v, const char **why)
{
    char canonical[RP_NAME_MAX + 1];
    const char *s = json_string_value(v);

    if (s == NULL) {
        *why = "must be a string";
        return NULL;
    }
    return rp_name_check(s, json_string_length(v), canonical, sizeof(canonical), why) == RP_OK
               ? s
               : NULL;
}

/* At most this many rounds of skeleton-then-fold settle a key: one is enough for most names, a
 * second when a prototype's case or a folded letter's prototype changes it again; a name that
 * has not settled by then (none is known) keeps what the last round made. */
#define SETTLE_ROUNDS 4

/*
 * Skeleton, then NFKC case fold, until nothing changes (names.h says why); the result as UTF-8 in
 * key. s (n units, capacity NAME_UTF16_MAX) is used as work space.
 */
static bool settle(const USpoofChecker *sc, const UNormalizer2 *fold, UChar *s, int32_t n,
                   char key[RP_NAME_KEY_MAX])
{
    UChar skeleton[NAME_UTF16_MAX], next[NAME_UTF16_MAX];
    UErrorCode e = U_ZERO_ERROR;
    int32_t sk, m, len;

    for (int round = 0; round < SETTLE_ROUNDS; round++) {
        sk = uspoof_getSkeleton(sc, 0, s, n, skeleton, NAME_UTF16_MAX, &e);
        if (U_FAILURE(e) || e == U_STRING_NOT_TERMINATED_WARNING || sk >= NAME_UTF16_MAX ||
            !normalize(fold, skeleton, sk, next, NAME_UTF16_MAX, &m))
            return false;
        if (m == n && u_memcmp(s, next, n) == 0)
            break;
        u_memcpy(s, next, m);
        n = m;
    }
    u_strToUTF8(key, RP_NAME_KEY_MAX, &len, s, n, &e);
    if (U_FAILURE(e) || e == U_STRING_NOT_TERMINATED_WARNING || len == 0 ||
        len >= RP_NAME_KEY_MAX) {
        key[0] = '\0';
        return false;
    }
    return true;
}

rp_err_t rp_name_keys(const char *name, rp_name_keys_t *keys)
{
    UChar in16[NAME_UTF16_MAX], work[NAME_UTF16_MAX];
    const USpoofChecker *sc = spoof_checker();
    const UNormalizer2 *fold, *compat;
    UErrorCode e = U_ZERO_ERROR;
    int32_t n, m;
    size_t bytes = name != NULL ? strlen(name) : 0;

    keys->folded[0] = keys->as_written[0] = '\0';
    if (bytes == 0 || bytes > NAME_INPUT_MAX || sc == NULL ||
        !to_utf16(name, bytes, in16, NAME_UTF16_MAX, &n))
        return RP_ERR_INVALID_ARG;
    fold = unorm2_getNFKCCasefoldInstance(&e);
    compat = unorm2_getNFKCInstance(&e);
    if (U_FAILURE(e))
        return RP_ERR_INVALID_ARG;
    /* (NFKC_Casefold also drops default-ignorable characters: a name of nothing else has no
     * key.) */
    if (!normalize(fold, in16, n, work, NAME_UTF16_MAX, &m) || m == 0 ||
        !settle(sc, fold, work, m, keys->folded))
        return RP_ERR_INVALID_ARG;
    if (!normalize(compat, in16, n, work, NAME_UTF16_MAX, &m) || m == 0 ||
        !settle(sc, fold, work, m, keys->as_written)) {
        keys->folded[0] = '\0';
        return RP_ERR_INVALID_ARG;
    }
    return RP_OK;
}

rp_err_t rp_name_lookup_form(const char *given, char *out, size_t cap)
{
    UChar nfc[NAME_UTF16_MAX];
    UErrorCode e = U_ZERO_ERROR;
    int32_t m, bytes;

    if (cap == 0 || cap > INT32_MAX)
        return RP_ERR_INVALID_ARG;
    out[0] = '\0';
    if (given == NULL || to_nfc(given, strlen(given), nfc, &m) != NULL)
        return RP_ERR_INVALID_ARG;
    u_strToUTF8(out, (int32_t)cap, &bytes, nfc, m, &e);
    if (U_FAILURE(e) || e == U_STRING_NOT_TERMINATED_WARNING || (size_t)bytes >= cap) {
        out[0] = '\0';
        return RP_ERR_INVALID_ARG;
    }
    return RP_OK;
}

const char *rp_name_prefix(const char *name, size_t max_chars, char *out, size_t cap)
{
    int32_t len = (int32_t)strnlen(name, cap > 0 ? cap - 1 : 0), i = 0, end = 0;
    size_t chars = 0;

    while (i < len && chars < max_chars) {
        UChar32 c;
        U8_NEXT(name, i, len, c); /* c < 0: ill-formed (overlong, surrogate, cut short) */
        if (c < 0)
            break;
        end = i;
        chars++;
    }
    if (end == 0)
        return NULL;
    memcpy(out, name, (size_t)end);
    out[end] = '\0';
    return out;
}
