/*
 * What the `rampart` CLI prints besides its own text: data as JSON, as an aligned table or as YAML
 * (--output json|table|yaml; every command that prints data calls cli_output_print), and the
 * progress bar of uploads and downloads (on stderr, on a terminal only).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <yaml.h>

#include "cli.h"

bool cli_parse_output(const char *s, cli_output_t *out)
{
    static const struct {
        const char *name;
        cli_output_t value;
    } names[] = {
        {"text",  CLI_OUTPUT_TEXT },
        {"json",  CLI_OUTPUT_JSON },
        {"table", CLI_OUTPUT_TABLE},
        {"yaml",  CLI_OUTPUT_YAML },
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].value;
            return true;
        }
    return false;
}

/* ---- table ---- */

/* Whether c (a byte, next its follower) starts a control character: C0, DEL, or C1 in UTF-8. */
static bool control_at(const unsigned char *c)
{
    return c[0] < 0x20 || c[0] == 0x7f || (c[0] == 0xc2 && c[1] >= 0x80 && c[1] <= 0x9f);
}

bool cli_text_clean(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        if (control_at(p))
            return false;
    return true;
}

void cli_text_sanitize(char *s)
{
    for (unsigned char *p = (unsigned char *)s; *p != '\0'; p++)
        if (control_at(p)) {
            if (p[0] == 0xc2)
                *p++ = '?';
            *p = '?';
        }
}

/* A cell's text (malloc'd): strings as they are, null as "-", anything else as compact JSON; a
 * control character shown as '?' (text from devices must not act on the operator's terminal). */
static char *cell_text(json_t *v)
{
    char *s;

    if (v == NULL || json_is_null(v))
        s = strdup("-");
    else if (json_is_string(v))
        s = strdup(json_string_value(v));
    else
        s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s != NULL)
        cli_text_sanitize(s);
    return s;
}

/* Columns on a terminal: UTF-8 code points (a continuation byte takes none). */
static size_t display_width(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

/* A header: the key in capitals, '_' as a space ("last_seen" is LAST SEEN). */
static char *header_text(const char *key)
{
    char *h = strdup(key);

    for (char *p = h; p != NULL && *p != '\0'; p++)
        *p = *p == '_' ? ' ' : (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
    return h;
}

/* rows: an array; each row an array of cell strings (the first is the header). Every column but
 * the last is padded to its widest cell. */
static int print_rows(json_t *rows)
{
    size_t ncol = json_array_size(json_array_get(rows, 0)), i, c, *width;
    json_t *row;

    width = calloc(ncol > 0 ? ncol : 1, sizeof(*width));
    if (width == NULL)
        return CLI_FAIL;
    json_array_foreach(rows, i, row)
    {
        for (c = 0; c < ncol; c++) {
            size_t w = display_width(json_string_value(json_array_get(row, c)));
            if (w > width[c])
                width[c] = w;
        }
    }
    json_array_foreach(rows, i, row)
    {
        for (c = 0; c < ncol; c++) {
            const char *s = json_string_value(json_array_get(row, c));
            if (c + 1 == ncol) {
                printf("%s\n", s);
                break;
            }
            printf("%s%*s  ", s, (int)(width[c] - display_width(s)), "");
        }
    }
    free(width);
    return CLI_OK;
}

/* Append a row of cells to rows (takes the strings; false when one is missing). */
static bool add_cell(json_t *row, char *text)
{
    bool ok = text != NULL && json_array_append_new(row, json_string(text)) == 0;

    free(text);
    return ok;
}

/* A list of objects: one column per key, in the order keys first appear. */
static int table_of_list(json_t *list)
{
    json_t *keys = json_array(), *rows = json_array(), *header = json_array(), *item, *k;
    size_t i, j;
    bool ok = keys != NULL && rows != NULL && header != NULL;
    int rc = CLI_FAIL;

    json_array_foreach(list, i, item)
    {
        const char *key;
        json_t *v;
        json_object_foreach(item, key, v)
        {
            bool seen = false;
            json_array_foreach(keys, j, k)
            {
                seen = seen || strcmp(json_string_value(k), key) == 0;
            }
            if (!seen)
                ok = ok && json_array_append_new(keys, json_string(key)) == 0;
        }
    }
    json_array_foreach(keys, j, k)
    {
        ok = ok && add_cell(header, header_text(json_string_value(k)));
    }
    ok = ok && json_array_append(rows, header) == 0;
    json_array_foreach(list, i, item)
    {
        json_t *row = json_array();
        ok = ok && row != NULL;
        json_array_foreach(keys, j, k)
        {
            ok = ok && add_cell(row, cell_text(json_object_get(item, json_string_value(k))));
        }
        ok = ok && json_array_append(rows, row) == 0;
        json_decref(row);
    }
    if (ok && json_array_size(keys) > 0)
        rc = print_rows(rows);
    else if (ok)
        rc = CLI_OK; /* an empty list: nothing to show */
    json_decref(keys);
    json_decref(rows);
    json_decref(header);
    return rc;
}

/* One object: a KEY value row per member. */
static int table_of_object(json_t *obj)
{
    json_t *rows = json_array(), *v;
    const char *key;
    bool ok = rows != NULL;
    int rc = CLI_FAIL;

    json_object_foreach(obj, key, v)
    {
        json_t *row = json_array();
        ok = ok && row != NULL && add_cell(row, header_text(key)) && add_cell(row, cell_text(v)) &&
             json_array_append(rows, row) == 0;
        json_decref(row);
    }
    if (ok)
        rc = json_array_size(rows) > 0 ? print_rows(rows) : CLI_OK;
    json_decref(rows);
    return rc;
}

static bool is_list_of_objects(json_t *v)
{
    json_t *item;
    size_t i;

    if (!json_is_array(v))
        return false;
    json_array_foreach(v, i, item) if (!json_is_object(item)) return false;
    return true;
}

/*
 * The service answers a list as an object with one array member ({"devices": [...]}, perhaps
 * with a page's offset and total beside it): that array is the table. Anything else that is an
 * object is shown as key/value rows.
 */
static int print_table(json_t *value)
{
    json_t *list = NULL, *v;
    const char *key;
    int arrays = 0;

    if (is_list_of_objects(value))
        return table_of_list(value);
    if (!json_is_object(value)) {
        char *s = cell_text(value);
        if (s == NULL)
            return CLI_FAIL;
        printf("%s\n", s);
        free(s);
        return CLI_OK;
    }
    json_object_foreach(value, key, v)
    {
        if (json_is_array(v) || json_is_object(v)) {
            arrays++;
            list = v;
        }
    }
    if (arrays == 1 && is_list_of_objects(list))
        return table_of_list(list);
    return table_of_object(value);
}

/* ---- YAML (libyaml's emitter) ---- */

/*
 * Whether a string may be written plain and still be read back as a string. YAML 1.1 readers
 * (PyYAML, libyaml's users) take "yes", "off", "~", "12", "1e3", "2026-11-28" and the like for
 * booleans, null, numbers and dates: a string is plain only when it starts with a letter and is
 * none of those words; libyaml itself then quotes what its grammar needs (": ", "#", ...).
 */
static bool plain_ok(const char *s)
{
    static const char *const words[] = {"y",    "n",     "yes",  "no",  "on",  "off",
                                        "true", "false", "null", "nan", "inf", "~"};
    char lower[8];
    size_t n = strlen(s);

    if (n == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return false;
    if (n >= sizeof(lower))
        return true;
    for (size_t i = 0; i <= n; i++)
        lower[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strcmp(lower, words[i]) == 0)
            return false;
    return true;
}

/* A scalar: plain when text is a number, boolean or null (plain_implicit), else a string that is
 * quoted unless plain_ok. */
static bool emit_scalar(yaml_emitter_t *e, const char *text, bool is_string)
{
    yaml_event_t ev;
    int plain = is_string ? plain_ok(text) : 1;

    if (!yaml_scalar_event_initialize(
            &ev, NULL, NULL, (yaml_char_t *)text, (int)strlen(text), plain, 1,
            plain ? YAML_ANY_SCALAR_STYLE : YAML_DOUBLE_QUOTED_SCALAR_STYLE))
        return false;
    return yaml_emitter_emit(e, &ev) != 0;
}

static bool emit_value(yaml_emitter_t *e, json_t *v, int depth)
{
    yaml_event_t ev;
    char num[64];
    const char *key;
    json_t *item;
    size_t i;

    if (depth > 64) /* the service's answers nest a few levels; a bound all the same */
        return false;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_ANY_MAPPING_STYLE) ||
            !yaml_emitter_emit(e, &ev))
            return false;
        json_object_foreach(v, key, item) if (!emit_scalar(e, key, true) ||
                                              !emit_value(e, item, depth + 1)) return false;
        return yaml_mapping_end_event_initialize(&ev) && yaml_emitter_emit(e, &ev);
    case JSON_ARRAY:
        if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_ANY_SEQUENCE_STYLE) ||
            !yaml_emitter_emit(e, &ev))
            return false;
        json_array_foreach(v, i, item) if (!emit_value(e, item, depth + 1)) return false;
        return yaml_sequence_end_event_initialize(&ev) && yaml_emitter_emit(e, &ev);
    case JSON_STRING: return emit_scalar(e, json_string_value(v), true);
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return emit_scalar(e, num, false);
    case JSON_REAL:
        snprintf(num, sizeof(num), "%.17g", json_real_value(v));
        if (strpbrk(num, ".eni") == NULL) /* "3" would read back as an integer */
            strcat(num, ".0");
        return emit_scalar(e, num, false);
    case JSON_TRUE: return emit_scalar(e, "true", false);
    case JSON_FALSE: return emit_scalar(e, "false", false);
    case JSON_NULL: return emit_scalar(e, "null", false);
    }
    return false;
}

static int print_yaml(json_t *value)
{
    yaml_emitter_t e;
    yaml_event_t ev;
    bool ok;

    if (!yaml_emitter_initialize(&e))
        return CLI_FAIL;
    yaml_emitter_set_output_file(&e, stdout);
    yaml_emitter_set_unicode(&e, 1);
    yaml_emitter_set_width(&e, -1); /* long values on one line: easier to grep */
    ok = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) && yaml_emitter_emit(&e, &ev);
    ok = ok && yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) &&
         yaml_emitter_emit(&e, &ev);
    ok = ok && emit_value(&e, value, 0);
    ok = ok && yaml_document_end_event_initialize(&ev, 1) && yaml_emitter_emit(&e, &ev);
    ok = ok && yaml_stream_end_event_initialize(&ev) && yaml_emitter_emit(&e, &ev);
    ok = ok && yaml_emitter_flush(&e);
    if (!ok)
        fprintf(stderr, "rampart: cannot write YAML: %s\n",
                e.problem != NULL ? e.problem : "out of memory");
    yaml_emitter_delete(&e);
    return ok ? CLI_OK : CLI_FAIL;
}

int cli_output_print(cli_output_t format, json_t *value)
{
    switch (format) {
    case CLI_OUTPUT_TABLE: return print_table(value);
    case CLI_OUTPUT_YAML: return print_yaml(value);
    case CLI_OUTPUT_TEXT: /* a command with no text form of its own shows the JSON */
    case CLI_OUTPUT_JSON: break;
    }
    if (json_dumpf(value, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY) != 0)
        return CLI_FAIL;
    putchar('\n');
    return CLI_OK;
}

/* ---- progress ---- */

static double now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void cli_progress_start(cli_progress_t *p, const char *name, uint64_t total, cli_output_t format)
{
    memset(p, 0, sizeof(*p));
    p->name = name;
    p->total = total;
    /* Only for a person: never into a pipe or a log, never beside machine-readable output. */
    p->shown = format == CLI_OUTPUT_TEXT && isatty(STDERR_FILENO) != 0;
    p->last_percent = -1;
    cli_progress_update(p, 0);
}

void cli_progress_update(cli_progress_t *p, uint64_t done)
{
    enum { BAR = 30 };
    char bar[BAR + 1];
    int percent, fill;
    double t;

    if (!p->shown || p->finished)
        return;
    if (p->total > 0 && done > p->total)
        done = p->total;
    percent = p->total > 0 ? (int)(done * 100 / p->total) : -1;
    t = now_seconds();
    /* Redrawn when the percentage moves, at most ten times a second (100% always). */
    if (p->total > 0 && percent == p->last_percent)
        return;
    if (percent != 100 && t - p->last_drawn < 0.1)
        return;
    if (p->drawn_once && done == p->drawn_done)
        return; /* the same as on the screen */
    p->last_percent = percent;
    p->last_drawn = t;
    p->drawn_done = done;
    p->drawn_once = true;
    if (p->total == 0) {
        fprintf(stderr, "\r%s: %.1f MiB", p->name, (double)done / 1048576.0);
        return;
    }
    fill = percent * BAR / 100;
    memset(bar, '#', (size_t)fill);
    memset(bar + fill, '.', (size_t)(BAR - fill));
    bar[BAR] = '\0';
    fprintf(stderr, "\r%s [%s] %.1f of %.1f MiB (%3d%%)", p->name, bar, (double)done / 1048576.0,
            (double)p->total / 1048576.0, percent);
}

void cli_progress_end(cli_progress_t *p, uint64_t done)
{
    if (!p->shown || p->finished)
        return;
    p->last_drawn = 0; /* the last state is always drawn */
    p->last_percent = -2;
    cli_progress_update(p, done);
    fputc('\n', stderr);
    p->finished = true;
}

void cli_progress_http(void *arg, uint64_t done, uint64_t total)
{
    cli_progress_t *p = arg;

    if (p->total == 0 && total > 0)
        p->total = total; /* a download learns its size from the answer */
    cli_progress_update(p, p->base + done);
}
