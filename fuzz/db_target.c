/*
 * Fuzz target: a --database target as the server reads it before any connection (server/store/
 * db.c): which driver it names, its description for the log, whether it holds a password, and a
 * libpq message about it scrubbed of that password. The input is the target, then '\n', then the
 * message. Whatever they are: the outputs end within their buffers, and the scrubbed message holds
 * no password libpq parses out of the target (one without '*', which the scrub writes itself).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "db.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text, *msg, out[512], described[256];
    const char *password = NULL;
    PQconninfoOption *opts;
    char *err = NULL;

    if (size > 4096)
        return 0;
    text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    msg = strchr(text, '\n');
    if (msg != NULL)
        *msg++ = '\0';
    else
        msg = text;
    (void)rp_db_driver_for(text);
    (void)rp_db_target_has_password(text);
    rp_db_target_describe(text, described, sizeof(described));
    if (memchr(described, '\0', sizeof(described)) == NULL)
        abort();
    rp_db_scrub(text, msg, out, sizeof(out));
    if (memchr(out, '\0', sizeof(out)) == NULL)
        abort();
    opts = rp_db_driver_for(text) == &rp_db_postgresql ? PQconninfoParse(text, &err) : NULL;
    PQfreemem(err);
    for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val != NULL && o->val[0] != '\0')
            password = o->val;
    if (password != NULL && strchr(password, '*') == NULL && strstr(out, password) != NULL)
        abort();
    PQconninfoFree(opts);
    free(text);
    return 0;
}
