/*
 * The rule for operators' names and the key their uniqueness is decided on (names.h), with ICU:
 * normalisation (NFC, NFKC case fold), character properties, and the UTS #39 spoof checker and
 * skeletons. Nothing else in Rampart decides what a name may be.
 */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/uspoof.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>

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
    UChar in16[NAME_UTF16_MAX], nfc[NAME_UTF16_MAX];
    const UNormalizer2 *form;
    const USpoofChecker *sc = spoof_checker();
    UErrorCode e = U_ZERO_ERROR;
    int32_t n, m, chars = 0, bytes;
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
    if (!to_utf16(name, len, in16, NAME_UTF16_MAX, &n)) {
        *why = "must be valid UTF-8";
        return RP_ERR_INVALID_ARG;
    }
    form = unorm2_getNFCInstance(&e);
    if (U_FAILURE(e) || sc == NULL || !normalize(form, in16, n, nfc, NAME_UTF16_MAX, &m)) {
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

rp_err_t rp_name_key(const char *name, char key[RP_NAME_KEY_MAX])
{
    UChar in16[NAME_UTF16_MAX], folded[NAME_UTF16_MAX];
    const USpoofChecker *sc = spoof_checker();
    const UNormalizer2 *fold;
    UErrorCode e = U_ZERO_ERROR;
    int32_t n, m, len;
    size_t bytes = name != NULL ? strlen(name) : 0;

    key[0] = '\0';
    if (bytes == 0 || bytes > NAME_INPUT_MAX || sc == NULL ||
        !to_utf16(name, bytes, in16, NAME_UTF16_MAX, &n))
        return RP_ERR_INVALID_ARG;
    /* NFKC_Casefold: compatibility forms (fullwidth, ligatures) and case folded together, with
     * default-ignorable characters removed; then the skeleton maps each look-alike to one
     * prototype; then the fold once more, since prototypes have case of their own ("0" becomes
     * "O", which must meet the "o" of "login"). */
    fold = unorm2_getNFKCCasefoldInstance(&e);
    if (U_FAILURE(e) || !normalize(fold, in16, n, folded, NAME_UTF16_MAX, &m) || m == 0)
        return RP_ERR_INVALID_ARG; /* (nothing but ignorable characters: no key) */
    {
        char folded8[4 * NAME_UTF16_MAX + 1], skeleton[RP_NAME_KEY_MAX];
        int32_t f8, sk;
        u_strToUTF8(folded8, (int32_t)sizeof(folded8), &f8, folded, m, &e);
        if (U_FAILURE(e) || e == U_STRING_NOT_TERMINATED_WARNING)
            return RP_ERR_INVALID_ARG;
        sk = uspoof_getSkeletonUTF8(sc, 0, folded8, f8, skeleton, (int32_t)sizeof(skeleton), &e);
        if (U_FAILURE(e) || e == U_STRING_NOT_TERMINATED_WARNING ||
            !to_utf16(skeleton, (size_t)sk, in16, NAME_UTF16_MAX, &n) ||
            !normalize(fold, in16, n, folded, NAME_UTF16_MAX, &m))
            return RP_ERR_INVALID_ARG;
        u_strToUTF8(key, RP_NAME_KEY_MAX, &len, folded, m, &e);
    }
    if (len == 0)
        return RP_ERR_INVALID_ARG;
    if (U_FAILURE(e) || e == U_STRING_NOT_TERMINATED_WARNING || len >= RP_NAME_KEY_MAX) {
        key[0] = '\0';
        return RP_ERR_INVALID_ARG;
    }
    return RP_OK;
}
