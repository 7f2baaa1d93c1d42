/*
 * `rampart key`: make signing keys and export their public halves.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/pem.h>

#include "cli.h"
#include "rampart/file.h"
#include "rampart/hex.h"
#include "rampart/key.h"
#include "rampart/log.h"

const char cli_key_usage[] =
    "Usage:\n"
    "  rampart key generate --type ecdsa-p256|ed25519 --out KEY.pem [--force]\n"
    "      Make a new private signing key, written as PKCS#8 PEM with mode 0600.\n"
    "      An existing file is kept unless --force is given.\n"
    "  rampart key public --key KEY.pem [--out PUB.pem [--force]]\n"
    "      Write the public key (SubjectPublicKeyInfo PEM) to PUB.pem, or to stdout.\n"
    "      An existing PUB.pem is kept unless --force is given; a file holding a private\n"
    "      key is never replaced.\n"
    "  Both print the key's type and hash (as images name it); --output json|table|yaml\n"
    "  prints them as data (file, type, key_hash; and public_key, the PEM, when it is not\n"
    "  written to a file).\n"
    "\n"
    "Keep private keys offline. Devices and the server need only the public key.\n"
    "A private key must be unencrypted PEM, the user's own, mode 0600 (as ssh wants its\n"
    "keys); an encrypted one is refused: decrypt it with openssl pkey.\n";

/* The public key as PEM text (malloc'd), or NULL. */
static char *public_pem(EVP_PKEY *key)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data, *pem = NULL;
    long len;

    if (bio != NULL && PEM_write_bio_PUBKEY(bio, key) == 1 &&
        (len = BIO_get_mem_data(bio, &data)) > 0 && (pem = malloc((size_t)len + 1)) != NULL) {
        memcpy(pem, data, (size_t)len);
        pem[len] = '\0';
    }
    BIO_free(bio);
    return pem;
}

/* Print the key's type and the hash images name it by (the KEYHASH TLV); as data unless the
 * output is text. path: the file written, or NULL (the public key goes into the data then). */
static int describe_key(EVP_PKEY *key, const char *path, cli_output_t output)
{
    uint8_t spki[RP_PUBKEY_DER_MAX], hash[RP_SHA256_LEN];
    char hex[2 * RP_SHA256_LEN + 1];
    rp_sig_alg_t alg;
    size_t len;

    if (rp_key_alg(key, &alg) != RP_OK || rp_key_spki(key, spki, sizeof(spki), &len) != RP_OK ||
        rp_sha256(spki, len, hash) != RP_OK ||
        rp_hex_encode(hash, sizeof(hash), hex, sizeof(hex)) != RP_OK) {
        rp_log_error("%s: cannot describe the key", path != NULL ? path : "the key");
        return CLI_FAIL;
    }
    if (output != CLI_OUTPUT_TEXT) {
        json_t *o = json_pack("{s:s?, s:s, s:s}", "file", path, "type", rp_key_type_name(alg),
                              "key_hash", hex);
        char *pem = path == NULL ? public_pem(key) : NULL;
        int rc = CLI_FAIL;
        if (o != NULL && path != NULL)
            rc = cli_output_print(output, o);
        else if (o != NULL && pem != NULL &&
                 json_object_set_new(o, "public_key", json_string(pem)) == 0)
            rc = cli_output_print(output, o);
        if (rc != CLI_OK)
            rp_log_error("cannot print the key's description");
        free(pem);
        json_decref(o);
        return rc;
    }
    printf("%s: %s key, key hash %s\n", path, rp_key_type_name(alg), hex);
    return CLI_OK;
}

/* Its getopt table; also the completion's and the help's (commands.c). */
const struct option cli_key_generate_options[] = {
    {"type",   required_argument, NULL, 't'},
    {"out",    required_argument, NULL, 'o'},
    {"force",  no_argument,       NULL, 'f'},
    {"output", required_argument, NULL, 'O'},
    {"help",   no_argument,       NULL, 'h'},
    {NULL,     0,                 NULL, 0  },
};

static int key_generate(int argc, char **argv)
{
    const char *type = NULL, *out = NULL;
    cli_output_t output = CLI_OUTPUT_TEXT;
    bool force = false;
    rp_sig_alg_t alg;
    EVP_PKEY *key = NULL;
    rp_err_t err;
    int c, rc;

    optind = 0;
    while ((c = getopt_long(argc, argv, "t:o:fO:h", cli_key_generate_options, NULL)) != -1) {
        switch (c) {
        case 't': type = optarg; break;
        case 'o': out = optarg; break;
        case 'f': force = true; break;
        case 'O':
            if (!cli_parse_output(optarg, &output))
                return cli_usage("key ", "--output must be " CLI_OUTPUT_NAMES);
            break;
        case 'h': fputs(cli_key_usage, stdout); return CLI_OK;
        default: return cli_usage("key ", "bad option");
        }
    }
    if (optind != argc)
        return cli_usage("key ", "unexpected argument '%s'", argv[optind]);
    if (type == NULL || out == NULL)
        return cli_usage("key ", "key generate needs --type and --out");
    if (rp_key_type_parse(type, &alg) != RP_OK)
        return cli_usage("key ", "unknown key type '%s' (ecdsa-p256 or ed25519)", type);

    if (rp_key_check_out(out, force, true) != RP_OK)
        return CLI_FAIL;
    err = rp_key_generate(alg, &key);
    if (err == RP_OK)
        err = rp_key_save_private(key, out, force);
    if (err != RP_OK) {
        rp_log_error("%s: %s%s", out, rp_strerror(err),
                     err == RP_ERR_EXISTS ? " (use --force to replace it)" : "");
        EVP_PKEY_free(key);
        return CLI_FAIL;
    }
    rc = describe_key(key, out, output);
    EVP_PKEY_free(key);
    return rc;
}

/* Its getopt table; also the completion's and the help's (commands.c). */
const struct option cli_key_public_options[] = {
    {"key",    required_argument, NULL, 'k'},
    {"out",    required_argument, NULL, 'o'},
    {"force",  no_argument,       NULL, 'f'},
    {"output", required_argument, NULL, 'O'},
    {"help",   no_argument,       NULL, 'h'},
    {NULL,     0,                 NULL, 0  },
};

static int key_public(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    cli_output_t output = CLI_OUTPUT_TEXT;
    EVP_PKEY *key = NULL;
    bool is_private, force = false;
    rp_err_t err;
    int c, ok;

    optind = 0;
    while ((c = getopt_long(argc, argv, "k:o:fO:h", cli_key_public_options, NULL)) != -1) {
        switch (c) {
        case 'k': in = optarg; break;
        case 'o': out = optarg; break;
        case 'f': force = true; break;
        case 'O':
            if (!cli_parse_output(optarg, &output))
                return cli_usage("key ", "--output must be " CLI_OUTPUT_NAMES);
            break;
        case 'h': fputs(cli_key_usage, stdout); return CLI_OK;
        default: return cli_usage("key ", "bad option");
        }
    }
    if (optind != argc)
        return cli_usage("key ", "unexpected argument '%s'", argv[optind]);
    if (in == NULL)
        return cli_usage("key ", "key public needs --key");

    if (out != NULL && rp_same_file(in, out)) {
        rp_log_error("%s is the key itself: refusing to overwrite it", out);
        return CLI_FAIL;
    }
    if (out != NULL && rp_key_check_out(out, force, false) != RP_OK)
        return CLI_FAIL;
    if (cli_key_load(in, &key, &is_private) != RP_OK)
        return CLI_FAIL;
    if (out == NULL && output != CLI_OUTPUT_TEXT) {
        ok = describe_key(key, NULL, output);
        EVP_PKEY_free(key);
        return ok;
    }
    if (out == NULL) {
        ok = PEM_write_PUBKEY(stdout, key) == 1 && fflush(stdout) == 0;
        EVP_PKEY_free(key);
        if (!ok)
            rp_log_error("cannot write the public key to stdout");
        return ok ? CLI_OK : CLI_FAIL;
    }
    {
        uint8_t spki[RP_PUBKEY_DER_MAX];
        size_t len;
        /* A key images cannot name is refused before anything is written. */
        err = rp_key_spki(key, spki, sizeof(spki), &len);
    }
    if (err == RP_OK)
        err = rp_key_save_public(key, out, !force);
    if (err != RP_OK) {
        rp_log_error("%s: %s", out, rp_strerror(err));
        EVP_PKEY_free(key);
        return CLI_FAIL;
    }
    ok = describe_key(key, out, output);
    EVP_PKEY_free(key);
    return ok;
}

int cmd_key(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(cli_key_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (strcmp(argv[1], "generate") == 0)
        return key_generate(argc - 1, argv + 1);
    if (strcmp(argv[1], "public") == 0)
        return key_public(argc - 1, argv + 1);
    return cli_usage("key ", "unknown key command '%s'", argv[1]);
}
