/*
 * Signs a payload as an app image with the library alone, none of `rampart image sign`'s checks of
 * what the payload holds: what a tool other than Rampart's could make, so that the tests see the
 * service refuse such an app tree at upload. A test tool, not a product command.
 *   sign-unchecked KEY.pem VERSION PAYLOAD OUT
 */
#include <stdio.h>
#include <string.h>

#include "rampart/imgsign.h"
#include "rampart/key.h"

int main(int argc, char **argv)
{
    rp_sign_opts_t so;
    EVP_PKEY *key = NULL;
    bool priv = false;
    rp_err_t err;

    if (argc != 5) {
        fprintf(stderr, "usage: sign-unchecked KEY.pem VERSION PAYLOAD OUT\n");
        return 2;
    }
    rp_sign_opts_init(&so);
    so.type = RP_IMAGE_TYPE_APP;
    err = rp_image_version_parse(argv[2], strlen(argv[2]), &so.version);
    if (err == RP_OK)
        err = rp_key_load(argv[1], &key, &priv);
    if (err == RP_OK && !priv)
        err = RP_ERR_BAD_KEY;
    if (err == RP_OK)
        err = rp_image_sign_file(key, &so, argv[3], argv[4], NULL);
    EVP_PKEY_free(key);
    if (err != RP_OK) {
        fprintf(stderr, "sign-unchecked: %s\n", rp_strerror(err));
        return 1;
    }
    return 0;
}
