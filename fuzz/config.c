/*
 * Fuzz target: rampart-server's config file (rp_config_parse, libinih underneath). Whatever the
 * text, the answer is a setting accepted within its range, or a refusal that names the file and
 * a line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rp_config_t c;
    char why[512];
    rp_err_t err;

    rp_config_defaults(&c);
    err = rp_config_parse((const char *)data, size, "f.conf", &c, why, sizeof(why));
    if (err == RP_OK) {
        if (c.threads < 0 || c.threads > 64 || c.nonce_lifetime < 1 || c.nonce_lifetime > 3600 ||
            c.rate_limit < 0 || c.unclaimed_rate < 0 || c.max_connections < 1 ||
            c.per_address < 0 || c.request_deadline < 1 || c.idle_timeout < 1 ||
            c.idle_timeout > 3600 || memchr(c.data_dir, '\0', sizeof(c.data_dir)) == NULL ||
            memchr(c.hostnames, '\0', sizeof(c.hostnames)) == NULL)
            abort();
    } else if (strncmp(why, "f.conf", 6) != 0) {
        abort();
    }
    return 0;
}
