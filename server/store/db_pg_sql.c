/*
 * The rewrite of SQLite's parameter forms into PostgreSQL's (db_pg.h): a small lexer that knows
 * just enough of both dialects to find parameters outside literals, identifiers and comments.
 * Its input is the store's own SQL, but it is bounded, checked and fuzzed (fuzz/db_pg_params.c)
 * all the same: every read is below the length found first, every write below the capacity. The
 * same lexer maps the type names of SQLite's DDL to the PostgreSQL baseline's (rp_db_pg_ddl).
 */
#include "store/db_pg.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Each parameter form is at least one character and its "$n" at most six ("$65535"). */
#define REWRITE_GROWTH 6

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool ident_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool name_char(unsigned char c)
{
    return ident_start(c) || is_digit(c);
}

/* PostgreSQL's identifiers may hold '$' after their first character. */
static bool ident_char(unsigned char c)
{
    return name_char(c) || c == '$';
}

/* The end (one past the closing quote) of the quoted run starting at sql[i], or 0 if it is
 * unterminated. The quote doubled stands for itself; BACKSLASH: a backslash escapes the next
 * character (PostgreSQL's E'...'). */
static size_t quoted_end(const char *sql, size_t len, size_t i, char q, bool backslash)
{
    for (size_t k = i + 1; k < len; k++) {
        if (backslash && sql[k] == '\\') {
            k++;
            continue;
        }
        if (sql[k] == q) {
            if (k + 1 < len && sql[k + 1] == q) {
                k++;
                continue;
            }
            return k + 1;
        }
    }
    return 0;
}

/* The end of the block comment starting at sql[i] ("/ *"), nested as PostgreSQL nests them, or 0
 * if it is unterminated. */
static size_t comment_end(const char *sql, size_t len, size_t i)
{
    size_t depth = 0;

    for (size_t k = i; k + 1 < len; k++) {
        if (sql[k] == '/' && sql[k + 1] == '*') {
            depth++;
            k++;
        } else if (sql[k] == '*' && sql[k + 1] == '/') {
            k++;
            if (--depth == 0)
                return k + 1;
        }
    }
    return 0;
}

/* The end of the dollar-quoted string starting at sql[i] with a tag of TAG_LEN characters
 * (both dollars included), or 0 if it is unterminated. */
static size_t dollar_end(const char *sql, size_t len, size_t i, size_t tag_len)
{
    for (size_t k = i + tag_len; k + tag_len <= len; k++)
        if (memcmp(sql + k, sql + i, tag_len) == 0)
            return k + tag_len;
    return 0;
}

typedef struct out_buf {
    char *p;
    size_t n, cap;
} out_buf_t;

static bool put(out_buf_t *o, const char *s, size_t n)
{
    if (n >= o->cap - o->n)
        return false;
    memcpy(o->p + o->n, s, n);
    o->n += n;
    o->p[o->n] = '\0';
    return true;
}

static bool put_param(out_buf_t *o, int index)
{
    char num[16];
    int n = snprintf(num, sizeof(num), "$%d", index);

    return n > 0 && (size_t)n < sizeof(num) && put(o, num, (size_t)n);
}

/* Parameter INDEX (from 1) exists, with the ":name" at sql[off..off+len) (len 0: a "?" or "?NNN");
 * those below it that no form named yet are unnamed. */
static rp_err_t set_param(rp_db_pg_sql_t *out, size_t *cap, int index, size_t off, size_t len)
{
    if (index < 1 || index > RP_DB_PG_PARAMS_MAX)
        return RP_ERR_MALFORMED;
    if ((size_t)index > *cap) {
        size_t grown_cap = *cap == 0 ? 8 : 2 * *cap;
        rp_db_pg_param_t *grown;
        if (grown_cap < (size_t)index)
            grown_cap = (size_t)index;
        grown = realloc(out->params, grown_cap * sizeof(*grown));
        if (grown == NULL)
            return RP_ERR_NO_MEMORY;
        out->params = grown;
        *cap = grown_cap;
    }
    while (out->nparams < index) {
        out->params[out->nparams].off = 0;
        out->params[out->nparams].len = 0;
        out->nparams++;
    }
    if (len > 0) {
        out->params[index - 1].off = off;
        out->params[index - 1].len = len;
    }
    return RP_OK;
}

/* If sql[i] starts a literal, a quoted identifier, a dollar-quoted string or a comment: its end
 * (0 if it is unterminated); else i. */
static size_t opaque_end(const char *sql, size_t len, size_t i)
{
    unsigned char c = (unsigned char)sql[i], next = i + 1 < len ? (unsigned char)sql[i + 1] : 0;
    bool after_ident = i > 0 && ident_char((unsigned char)sql[i - 1]);

    if (c == '\'') {
        /* E'...' (not the end of a longer name): backslash escapes */
        bool e = i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e') &&
                 !(i > 1 && ident_char((unsigned char)sql[i - 2]));
        return quoted_end(sql, len, i, '\'', e);
    }
    if (c == '"')
        return quoted_end(sql, len, i, '"', false);
    if (c == '-' && next == '-') {
        const char *nl = memchr(sql + i, '\n', len - i);
        return nl != NULL ? (size_t)(nl - sql) + 1 : len;
    }
    if (c == '/' && next == '*')
        return comment_end(sql, len, i);
    if (c == '$' && !after_ident && !is_digit(next)) {
        size_t k = i + 1;
        if (k < len && ident_start((unsigned char)sql[k]))
            while (k < len && name_char((unsigned char)sql[k]))
                k++;
        if (k < len && sql[k] == '$')
            return dollar_end(sql, len, i, k - i + 1);
    }
    return i;
}

static rp_err_t rewrite(const char *sql, size_t len, rp_db_pg_sql_t *out, out_buf_t *o)
{
    size_t params_cap = 0, i = 0;
    rp_err_t err;

    while (i < len) {
        unsigned char c = (unsigned char)sql[i], next = i + 1 < len ? (unsigned char)sql[i + 1] : 0;
        bool after_ident = i > 0 && ident_char((unsigned char)sql[i - 1]);
        size_t op = opaque_end(sql, len, i), end = op == i ? i + 1 : op;
        int index;

        if (op != i) {
            /* copied as it is */
        } else if (c == '$' && !after_ident && is_digit(next)) {
            return RP_ERR_MALFORMED; /* PostgreSQL's own placeholder: not ours to mix */
        } else if (c == ':' && next == ':') {
            end = i + 2; /* a cast: the type name after it is copied as any other word */
        } else if (c == ':' && ident_start(next)) {
            size_t k = i + 1;
            while (k < len && name_char((unsigned char)sql[k]))
                k++;
            index = 0;
            for (int p = 0; p < out->nparams && index == 0; p++)
                if (out->params[p].len == k - i &&
                    memcmp(sql + out->params[p].off, sql + i, k - i) == 0)
                    index = p + 1;
            /* a new name: the index after the largest so far, as SQLite numbers it */
            if (index == 0 &&
                (err = set_param(out, &params_cap, index = out->nparams + 1, i, k - i)) != RP_OK)
                return err;
            if (!put_param(o, index))
                return RP_ERR_TOO_LARGE;
            i = k;
            continue;
        } else if (c == '?') {
            /* "?NNN" is parameter NNN (the store's SQL numbers many); "?" the one after the
             * largest so far */
            size_t k = i + 1;
            index = 0;
            while (k < len && is_digit((unsigned char)sql[k]) && index <= RP_DB_PG_PARAMS_MAX)
                index = index * 10 + (sql[k++] - '0');
            if (k == i + 1)
                index = out->nparams + 1;
            else if (k < len && is_digit((unsigned char)sql[k]))
                return RP_ERR_MALFORMED; /* too large */
            if ((err = set_param(out, &params_cap, index, i, 0)) != RP_OK)
                return err;
            if (!put_param(o, index))
                return RP_ERR_TOO_LARGE;
            i = k;
            continue;
        }
        if (end == 0 || end > len)
            return RP_ERR_MALFORMED; /* unterminated */
        if (!put(o, sql + i, end - i))
            return RP_ERR_TOO_LARGE;
        i = end;
    }
    return RP_OK;
}

rp_err_t rp_db_pg_rewrite(const char *sql, rp_db_pg_sql_t *out)
{
    size_t len;
    out_buf_t o;
    rp_err_t err;

    memset(out, 0, sizeof(*out));
    if (sql == NULL)
        return RP_ERR_INVALID_ARG;
    len = strnlen(sql, (size_t)RP_DB_PG_SQL_MAX + 1);
    if (len > RP_DB_PG_SQL_MAX)
        return RP_ERR_TOO_LARGE;
    o.cap = len * REWRITE_GROWTH + 1;
    o.n = 0;
    o.p = malloc(o.cap);
    if (o.p == NULL)
        return RP_ERR_NO_MEMORY;
    o.p[0] = '\0';
    err = rewrite(sql, len, out, &o);
    out->sql = o.p;
    if (err != RP_OK)
        rp_db_pg_sql_free(out);
    return err;
}

void rp_db_pg_sql_free(rp_db_pg_sql_t *s)
{
    free(s->sql);
    free(s->params);
    memset(s, 0, sizeof(*s));
}

/* The word at sql[i..end) is W (ASCII, any case). */
static bool word_is(const char *sql, size_t i, size_t end, const char *w)
{
    return end - i == strlen(w) && strncasecmp(sql + i, w, end - i) == 0;
}

/* The next word at or after sql[i] (spaces and comments skipped): OUT: its start and end. */
static void next_word(const char *sql, size_t len, size_t i, size_t *start, size_t *end)
{
    for (;;) {
        size_t op;
        while (i < len && (sql[i] == ' ' || sql[i] == '\n' || sql[i] == '\t' || sql[i] == '\r'))
            i++;
        op = i < len ? opaque_end(sql, len, i) : i;
        if (op == i || sql[i] == '\'' || sql[i] == '"' || sql[i] == '$')
            break;
        i = op == 0 ? len : op;
    }
    *start = *end = i;
    while (*end < len && ident_char((unsigned char)sql[*end]))
        (*end)++;
}

/* SQLite's type name at sql[i..end) in PostgreSQL's (NULL: the same). */
static const char *pg_type(const char *sql, size_t len, size_t i, size_t end)
{
    size_t w, we;

    next_word(sql, len, end, &w, &we);
    if (word_is(sql, i, end, "INTEGER")) {
        if (word_is(sql, w, we, "PRIMARY")) /* a rowid key */
            return "BIGINT GENERATED BY DEFAULT AS IDENTITY";
        return "BIGINT";
    }
    if (word_is(sql, i, end, "BLOB"))
        return "BYTEA";
    if (word_is(sql, i, end, "REAL"))
        return "DOUBLE PRECISION";
    if (word_is(sql, i, end, "TEXT") && !word_is(sql, w, we, "COLLATE"))
        return "TEXT COLLATE \"C\"";
    return NULL;
}

enum ddl_kind { DDL_OTHER, DDL_CREATE_TABLE, DDL_ALTER_TABLE };

rp_err_t rp_db_pg_ddl(const char *sql, char **out)
{
    size_t len, i = 0;
    out_buf_t o;
    enum ddl_kind kind = DDL_OTHER;
    int depth = 0, words = 0, element_words = 0;
    bool constraint = false, after_add = false;
    size_t add_words = 0;

    *out = NULL;
    if (sql == NULL)
        return RP_ERR_INVALID_ARG;
    len = strnlen(sql, (size_t)RP_DB_PG_SQL_MAX + 1);
    if (len > RP_DB_PG_SQL_MAX)
        return RP_ERR_TOO_LARGE;
    /* the longest replacement ("INTEGER" as an identity) is under 8 times the word */
    o.cap = len * 8 + 1;
    o.n = 0;
    o.p = malloc(o.cap);
    if (o.p == NULL)
        return RP_ERR_NO_MEMORY;
    o.p[0] = '\0';
    while (i < len) {
        unsigned char c = (unsigned char)sql[i];
        size_t op = opaque_end(sql, len, i), end = op == i ? i + 1 : op;
        const char *type = NULL;

        bool quoted = op != i && c == '"'; /* a quoted name is a word, never a type */

        if (op != i && (op == 0 || op > len))
            goto malformed;
        if (quoted ||
            (op == i && ident_start(c) && !(i > 0 && ident_char((unsigned char)sql[i - 1])))) {
            while (!quoted && end < len && ident_char((unsigned char)sql[end]))
                end++;
            if (depth == 0) {
                words++;
                if (words == 1)
                    kind = word_is(sql, i, end, "CREATE")  ? DDL_CREATE_TABLE
                           : word_is(sql, i, end, "ALTER") ? DDL_ALTER_TABLE
                                                           : DDL_OTHER;
                else if (words == 2 && !word_is(sql, i, end, "TABLE"))
                    kind = DDL_OTHER; /* CREATE INDEX, ALTER INDEX... */
                if (kind == DDL_CREATE_TABLE && word_is(sql, i, end, "WITHOUT")) {
                    size_t w, we;
                    next_word(sql, len, end, &w, &we);
                    if (word_is(sql, w, we, "ROWID")) {
                        i = we; /* SQLite's storage choice: PostgreSQL has no rowid */
                        continue;
                    }
                }
                if (kind == DDL_ALTER_TABLE) {
                    /* ADD [COLUMN] name TYPE */
                    if (after_add) {
                        add_words++;
                        if (add_words == 1 && word_is(sql, i, end, "COLUMN"))
                            add_words = 0;
                        else if (add_words == 2 && !quoted)
                            type = pg_type(sql, len, i, end);
                    } else if (word_is(sql, i, end, "ADD")) {
                        after_add = true;
                        add_words = 0;
                    }
                }
            } else if (depth == 1 && kind == DDL_CREATE_TABLE) {
                /* a column: name TYPE ...; or a table constraint */
                element_words++;
                if (element_words == 1)
                    constraint = word_is(sql, i, end, "CONSTRAINT") ||
                                 word_is(sql, i, end, "PRIMARY") ||
                                 word_is(sql, i, end, "UNIQUE") ||
                                 word_is(sql, i, end, "FOREIGN") || word_is(sql, i, end, "CHECK");
                else if (element_words == 2 && !constraint && !quoted)
                    type = pg_type(sql, len, i, end);
            }
        } else if (op != i) {
            /* a literal or a comment: copied as it is */
        } else if (c == '(') {
            if (++depth == 1)
                element_words = 0;
        } else if (c == ')') {
            depth = depth > 0 ? depth - 1 : 0;
        } else if (c == ',' && depth == 1) {
            element_words = 0;
        } else if (c == ';' && depth == 0) {
            kind = DDL_OTHER;
            words = 0;
            after_add = false;
        }
        if (type != NULL ? !put(&o, type, strlen(type)) : !put(&o, sql + i, end - i)) {
            free(o.p);
            return RP_ERR_TOO_LARGE;
        }
        i = end;
    }
    *out = o.p;
    return RP_OK;
malformed:
    free(o.p);
    return RP_ERR_MALFORMED;
}
