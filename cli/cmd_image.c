/*
 * `rampart image`: sign payloads into MCUboot-format images, verify them, and show what they hold.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "rampart/apptree.h"
#include "rampart/file.h"
#include "rampart/hex.h"
#include "rampart/image.h"
#include "rampart/imgsign.h"
#include "rampart/key.h"
#include "rampart/log.h"
#include "rampart/rot.h"

#define MAX_KEYS 16
/* TLV values longer than this are cut short in text output (JSON always has them whole). */
#define TEXT_VALUE_MAX 32

const char cli_image_usage[] =
    "Usage:\n"
    "  rampart image sign --key KEY.pem --version X.Y.Z+B [options] PAYLOAD OUT\n"
    "      Sign PAYLOAD into an MCUboot-format image OUT. An existing OUT is kept (unless\n"
    "      with --force); a file holding a private key is never replaced. A PAYLOAD that\n"
    "      changes while it is signed is refused. With --type app, a PAYLOAD that is an\n"
    "      app tree (a tar, app_manifest.json first) must pass `rampart app check`.\n"
    "  rampart image sign --type app --key KEY.pem --version X.Y.Z+B [options] DIR OUT\n"
    "      Pack the app directory DIR (app_manifest.json at its root; `rampart app check`)\n"
    "      into a reproducible archive and sign it as the payload of OUT (not inside DIR).\n"
    "        --force                    replace an existing OUT (never a private key)\n"
    "        --security-counter N|auto  anti-rollback counter (protected SEC_CNT TLV);\n"
    "                                   auto derives it from the version as imgtool does\n"
    "                                   (large: a TPM holds at most 64, so sign says so)\n"
    "        --header-size N            header area size (default 0x200)\n"
    "        --type firmware|app|system\n"
    "                                   what the image is (protected Rampart TLV; without\n"
    "                                   it the image has no type: `image show` says null)\n"
    "        --public-key-format hash|full  name the key by its hash (default) or embed it\n"
    "        --load-addr ADDR           load address in the header (default 0)\n"
    "        --pad-byte N               header padding, the flash's erased value (default 0xff)\n"
    "        --output FORMAT            text (one line, the default), json, table or yaml: the\n"
    "                                   signed image as `image verify --output` shows it\n"
    "  rampart image verify --key PUB.pem [--key PUB.pem...] [--output FORMAT] IMAGE\n"
    "      Exit 0 and print one line if IMAGE is signed by one of the keys and intact;\n"
    "      otherwise exit 1 with the reason.\n"
    "  rampart image show IMAGE [--output text|json|table|yaml]\n"
    "      Print the header, version, security counter, sizes, TLVs and digest.\n"
    "      Checks the digest but not the signature (that needs a key: use verify).\n";

static void log_image_error(const char *path, const char *verb, rp_err_t err)
{
    rp_log_error("%s: %s: %s", path, verb, rp_strerror(err));
}

/* The IMAGE_TYPE option's value. */
static bool parse_type(const char *s, rp_image_type_t *type)
{
    for (int t = RP_IMAGE_TYPE_FIRMWARE; t <= RP_IMAGE_TYPE_SYSTEM; t++) {
        if (strcmp(s, rp_image_type_name((rp_image_type_t)t)) == 0) {
            *type = (rp_image_type_t)t;
            return true;
        }
    }
    return false;
}

/* imgtool's "--security-counter auto": the version packed as major<<24 | minor<<16 | revision. */
static uint32_t counter_from_version(const rp_image_version_t *v)
{
    return (uint32_t)v->major << 24 | (uint32_t)v->minor << 16 | v->revision;
}

/* Open path and verify it against the keys. OUT: *info on success. */
static rp_err_t verify_path(const char *path, const rp_image_key_t *keys, size_t nkeys,
                            rp_image_info_t *info, uint64_t *file_size)
{
    rp_file_image_t img;
    uint8_t *scratch;
    rp_err_t err;

    err = rp_file_image_open(&img, path);
    if (err != RP_OK)
        return err;
    *file_size = img.io.size;
    scratch = malloc(RP_FILE_IMAGE_SCRATCH);
    if (scratch == NULL) {
        rp_file_image_close(&img);
        return RP_ERR_NO_MEMORY;
    }
    err = rp_image_verify(&img.io, keys, nkeys, scratch, RP_FILE_IMAGE_SCRATCH, info);
    free(scratch);
    rp_file_image_close(&img);
    return err;
}

/* A file name as a JSON string: names need not be UTF-8, JSON strings must be, so bytes that
 * are not valid UTF-8 become '?'. */
static json_t *json_path(const char *path)
{
    json_t *s = json_string(path);
    char *copy;

    if (s != NULL)
        return s;
    copy = strdup(path);
    if (copy == NULL)
        return json_null();
    for (char *p = copy; *p != '\0'; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    s = json_string(copy);
    free(copy);
    return s != NULL ? s : json_null();
}

/* One line describing a valid image. */
static void print_valid(const char *path, const rp_image_info_t *info, const char *key_path)
{
    char ver[RP_IMAGE_VERSION_STR_MAX], hex[2 * RP_SHA256_LEN + 1];
    const char *type = rp_image_type_name(info->type);

    if (rp_image_version_format(&info->layout.hdr.version, ver, sizeof(ver)) != RP_OK ||
        rp_hex_encode(info->digest, sizeof(info->digest), hex, sizeof(hex)) != RP_OK)
        return;
    printf("%s: valid: version %s", path, ver);
    if (info->has_security_counter)
        printf(", security counter %u", (unsigned)info->security_counter);
    if (type != NULL)
        printf(", type %s", type);
    printf(", %s signature by %s, sha256 %s\n", rp_sig_alg_name(info->sig_alg), key_path, hex);
}

/* The directory that holds path (resolved), or false when it cannot be resolved. */
static bool real_dir_of(const char *path, char out[PATH_MAX])
{
    char copy[PATH_MAX];
    char *slash;

    if (strlen(path) >= sizeof(copy))
        return false;
    strcpy(copy, path);
    slash = strrchr(copy, '/');
    if (slash == copy)
        slash[1] = '\0';
    else if (slash != NULL)
        *slash = '\0';
    return realpath(slash != NULL ? copy : ".", out) != NULL;
}

/* Whether the resolved path is dir or below it. */
static bool within(const char *dir, const char *path)
{
    size_t n = strlen(dir);

    return strcmp(dir, "/") == 0 ||
           (strncmp(dir, path, n) == 0 && (path[n] == '/' || path[n] == '\0'));
}

/*
 * Pack the app directory dir into a temporary file in OUT's directory (which is not inside dir,
 * where the tree would pack the tool's own files), which the caller removes once signed. OUT:
 * tree_path. A refusal is logged with its reason.
 */
static rp_err_t pack_app(const char *dir, const char *out, char *tree_path, size_t cap)
{
    char why[512], real_dir[PATH_MAX], out_dir[PATH_MAX];
    rp_manifest_t m;
    rp_err_t err;
    int fd, n;

    if (realpath(dir, real_dir) == NULL || !real_dir_of(out, out_dir)) {
        rp_log_error("cannot resolve %s or the directory of %s: %s", dir, out, strerror(errno));
        return RP_ERR_NOT_FOUND;
    }
    if (within(real_dir, out_dir)) {
        rp_log_error("%s is inside the app directory %s: it would be packed into the next image; "
                     "write it outside %s",
                     out, dir, dir);
        return RP_ERR_INVALID_ARG;
    }
    n = snprintf(tree_path, cap, "%s/.rampart-app-tree.XXXXXX", out_dir);
    if (n < 0 || (size_t)n >= cap)
        return RP_ERR_TOO_LARGE;
    fd = mkostemp(tree_path, O_CLOEXEC);
    if (fd < 0) {
        rp_log_error("cannot make a temporary file %s: %s", tree_path, strerror(errno));
        return RP_ERR_IO;
    }
    err = rp_apptree_pack(dir, fd, &m, why, sizeof(why));
    if (err == RP_OK && fsync(fd) != 0)
        err = RP_ERR_IO;
    close(fd);
    if (err != RP_OK) {
        rp_log_error("%s: not an app tree I can pack: %s", dir,
                     why[0] != '\0' ? why : rp_strerror(err));
        unlink(tree_path);
        return err;
    }
    rp_log_info("%s: packed app %s (component %s, entry point %s)", dir, m.name, m.component_id,
                m.entry_point);
    return RP_OK;
}

/* A file signed as an app: when it is a tree (any tar: rp_apptree_kind), the device's rules
 * (rp_apptree_check) must pass, or every device would refuse it at install. A single file (a
 * legacy app, not a tar) passes. A refusal is logged. */
static rp_err_t check_app_file(const char *path)
{
    rp_apptree_kind_t kind;
    rp_manifest_t *m = malloc(sizeof(*m));
    char why[512] = "";
    struct stat st;
    rp_err_t err = m == NULL ? RP_ERR_NO_MEMORY : RP_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        err = RP_ERR_IO;
    if (err == RP_OK)
        err = rp_apptree_kind(fd, 0, (uint64_t)st.st_size, &kind);
    if (err == RP_OK && kind == RP_APPTREE_TREE)
        err = rp_apptree_check(fd, 0, (uint64_t)st.st_size, m, why, sizeof(why));
    if (fd >= 0)
        close(fd);
    free(m);
    if (err != RP_OK)
        rp_log_error("%s: not an app tree a device accepts: %s (`rampart app check`; or sign the "
                     "app's directory)",
                     path, why[0] != '\0' ? why : rp_strerror(err));
    return err;
}

/* Its getopt table; also the completion's and the help's (commands.c). */
const struct option cli_image_sign_options[] = {
    {"key",               required_argument, NULL, 'k'},
    {"version",           required_argument, NULL, 'v'},
    {"security-counter",  required_argument, NULL, 's'},
    {"header-size",       required_argument, NULL, 'H'},
    {"type",              required_argument, NULL, 't'},
    {"public-key-format", required_argument, NULL, 'p'},
    {"load-addr",         required_argument, NULL, 'l'},
    {"pad-byte",          required_argument, NULL, 'P'},
    {"output",            required_argument, NULL, 'o'},
    {"force",             no_argument,       NULL, 'f'},
    {"help",              no_argument,       NULL, 'h'},
    {NULL,                0,                 NULL, 0  },
};

static void print_verify_json(cli_output_t output, const char *path, const rp_image_info_t *info,
                              rp_err_t err, const char *key_path, uint64_t file_size);

static int image_sign(int argc, char **argv)
{
    const char *key_path = NULL, *version = NULL, *counter = NULL;
    char tree_path[PATH_MAX];
    rp_image_info_t info;
    rp_sign_opts_t so;
    EVP_PKEY *key = NULL;
    bool is_private, is_dir, force = false;
    uint32_t v;
    rp_err_t err;
    cli_output_t output = CLI_OUTPUT_TEXT;
    int c;

    rp_sign_opts_init(&so);
    optind = 0;
    while ((c = getopt_long(argc, argv, "k:v:s:H:t:p:l:P:o:fh", cli_image_sign_options, NULL)) !=
           -1) {
        switch (c) {
        case 'k': key_path = optarg; break;
        case 'v': version = optarg; break;
        case 's': counter = optarg; break;
        case 'H':
            if (!cli_parse_u32(optarg, UINT16_MAX, &v) || v < RP_IMAGE_HEADER_SIZE)
                return cli_usage("image ", "--header-size must be %d to 65535",
                                 RP_IMAGE_HEADER_SIZE);
            so.hdr_size = (uint16_t)v;
            break;
        case 't':
            if (!parse_type(optarg, &so.type))
                return cli_usage("image ", "--type must be firmware, app or system");
            break;
        case 'p':
            if (strcmp(optarg, "hash") != 0 && strcmp(optarg, "full") != 0)
                return cli_usage("image ", "--public-key-format must be hash or full");
            so.embed_pubkey = strcmp(optarg, "full") == 0;
            break;
        case 'l':
            if (!cli_parse_u32(optarg, UINT32_MAX, &so.load_addr))
                return cli_usage("image ", "bad --load-addr '%s'", optarg);
            break;
        case 'P':
            if (!cli_parse_u32(optarg, UINT8_MAX, &v))
                return cli_usage("image ", "--pad-byte must be 0 to 255");
            so.pad_byte = (uint8_t)v;
            break;
        case 'o':
            if (!cli_parse_output(optarg, &output))
                return cli_usage("image ", "--output must be " CLI_OUTPUT_NAMES);
            break;
        case 'f': force = true; break;
        case 'h': fputs(cli_image_usage, stdout); return CLI_OK;
        default: return cli_usage("image ", "bad option");
        }
    }
    so.exclusive = !force;
    if (argc - optind != 2)
        return cli_usage("image ", "image sign needs PAYLOAD and OUT");
    if (key_path == NULL || version == NULL)
        return cli_usage("image ", "image sign needs --key and --version");
    if (rp_image_version_parse(version, strlen(version), &so.version) != RP_OK)
        return cli_usage("image ",
                         "bad --version '%s' (major.minor.revision+build, "
                         "at most 255.255.65535+4294967295)",
                         version);
    if (counter != NULL) {
        so.has_security_counter = true;
        if (strcmp(counter, "auto") == 0)
            so.security_counter = counter_from_version(&so.version);
        else if (!cli_parse_u32(counter, UINT32_MAX, &so.security_counter))
            return cli_usage("image ", "bad --security-counter '%s'", counter);
    }

    {
        struct stat st;
        is_dir = stat(argv[optind], &st) == 0 && S_ISDIR(st.st_mode);
    }
    if (is_dir && so.type != RP_IMAGE_TYPE_APP)
        return cli_usage("image ", "%s is a directory: an app's tree, signed with --type app",
                         argv[optind]);

    if (cli_key_load(key_path, &key, &is_private) != RP_OK)
        return CLI_FAIL;
    if (!is_private) {
        rp_log_error("%s: a public key cannot sign: give the private key", key_path);
        EVP_PKEY_free(key);
        return CLI_FAIL;
    }
    if (rp_same_file(key_path, argv[optind + 1]) || rp_same_file(argv[optind], argv[optind + 1])) {
        rp_log_error("%s is the key or the payload: refusing to overwrite it", argv[optind + 1]);
        EVP_PKEY_free(key);
        return CLI_FAIL;
    }
    if (rp_key_check_out(argv[optind + 1], force, false) != RP_OK ||
        (!is_dir && so.type == RP_IMAGE_TYPE_APP && check_app_file(argv[optind]) != RP_OK)) {
        EVP_PKEY_free(key);
        return CLI_FAIL;
    }
    if (is_dir) {
        err = pack_app(argv[optind], argv[optind + 1], tree_path, sizeof(tree_path));
        if (err != RP_OK) {
            EVP_PKEY_free(key);
            return CLI_FAIL;
        }
    }
    /* The library verifies the image with the key's public half before it takes OUT's name. */
    err = rp_image_sign_file(key, &so, is_dir ? tree_path : argv[optind], argv[optind + 1], &info);
    EVP_PKEY_free(key);
    if (is_dir && unlink(tree_path) != 0)
        rp_log_warn("cannot remove %s: %s", tree_path, strerror(errno));
    if (err != RP_OK) {
        rp_log_error("cannot sign %s into %s: %s", argv[optind], argv[optind + 1],
                     err == RP_ERR_BUSY ? "the payload changed while it was being signed (still "
                                          "being written?): sign it again once it is complete"
                     : err == RP_ERR_EXISTS ? "it appeared meanwhile: refusing to replace it"
                                            : rp_strerror(err));
        return CLI_FAIL;
    }
    if (output == CLI_OUTPUT_TEXT) {
        print_valid(argv[optind + 1], &info, key_path);
    } else {
        struct stat st;
        print_verify_json(output, argv[optind + 1], &info, RP_OK, key_path,
                          stat(argv[optind + 1], &st) == 0 ? (uint64_t)st.st_size : 0);
    }
    {
        char warning[256];
        if (rp_image_seccnt_warning(info.has_security_counter, info.security_counter,
                                    RP_ROT_TPM2_SECCNT_MAX, warning, sizeof(warning)))
            rp_log_warn("%s%s", warning,
                        strcmp(counter, "auto") == 0
                            ? " (--security-counter auto packs the version as major << 24 | minor "
                              "<< 16 | revision: give a small number instead, raised with each "
                              "release that must not be rolled back)"
                            : "");
    }
    return CLI_OK;
}

/* Name the first forbidden TLV, for a more useful refusal than the code alone. */
static void explain_forbidden(const char *path)
{
    rp_image_layout_t layout;
    rp_image_tlv_iter_t it;
    rp_file_image_t img;
    rp_image_tlv_t tlv;
    bool found;

    if (rp_file_image_open(&img, path) != RP_OK)
        return;
    if (rp_image_layout(&img.io, &layout) == RP_OK) {
        rp_image_tlv_begin(&it, &img.io, &layout);
        while (rp_image_tlv_next(&it, &tlv, &found) == RP_OK && found) {
            const char *name = rp_image_tlv_name(tlv.type);
            if (tlv.protected_area || rp_image_tlv_allowed_unprotected(tlv.type))
                continue;
            rp_log_error("%s: TLV %s (0x%04x) must be in the protected area, covered by the "
                         "signature (CVE-2024-32883)",
                         path, name != NULL ? name : "unknown", tlv.type);
            break;
        }
    }
    rp_file_image_close(&img);
}

/* Say which feature an unsupported image uses: a header flag, or an algorithm. */
static void explain_unsupported(const char *path)
{
    rp_image_layout_t layout;
    rp_file_image_t img;
    uint32_t flags = 0;

    if (rp_file_image_open(&img, path) != RP_OK)
        return;
    if (rp_image_layout(&img.io, &layout) == RP_OK)
        flags = layout.hdr.flags;
    rp_file_image_close(&img);
    if (flags & (RP_IMAGE_F_ENCRYPTED_AES128 | RP_IMAGE_F_ENCRYPTED_AES256))
        rp_log_error("%s: the image is encrypted; Rampart verifies plaintext images", path);
    else if (flags & (RP_IMAGE_F_COMPRESSED_LZMA1 | RP_IMAGE_F_COMPRESSED_LZMA2 |
                      RP_IMAGE_F_COMPRESSED_ARM_THUMB))
        rp_log_error("%s: the image is compressed; Rampart verifies uncompressed images", path);
    else if (flags & ~(RP_IMAGE_F_PIC | RP_IMAGE_F_NON_BOOTABLE | RP_IMAGE_F_RAM_LOAD |
                       RP_IMAGE_F_ROM_FIXED))
        rp_log_error("%s: header flags 0x%08x include ones Rampart does not implement", path,
                     flags);
    else
        rp_log_error("%s: its signature algorithm is not available in this build (crypto: %s)",
                     path, rp_crypto_backend());
}

static void print_verify_json(cli_output_t output, const char *path, const rp_image_info_t *info,
                              rp_err_t err, const char *key_path, uint64_t file_size)
{
    char ver[RP_IMAGE_VERSION_STR_MAX], hex[2 * RP_SHA256_LEN + 1];
    json_t *o = json_object();

    json_object_set_new(o, "file", json_path(path));
    json_object_set_new(o, "valid", json_boolean(err == RP_OK));
    if (err != RP_OK) {
        json_object_set_new(o, "error", json_string(rp_strerror(err)));
        json_object_set_new(o, "error_code", json_integer(err));
    } else if (rp_image_version_format(&info->layout.hdr.version, ver, sizeof(ver)) == RP_OK &&
               rp_hex_encode(info->digest, sizeof(info->digest), hex, sizeof(hex)) == RP_OK) {
        const char *type = rp_image_type_name(info->type);
        json_object_set_new(o, "version", json_string(ver));
        json_object_set_new(o, "security_counter",
                            info->has_security_counter ? json_integer(info->security_counter)
                                                       : json_null());
        json_object_set_new(o, "type", type != NULL ? json_string(type) : json_null());
        json_object_set_new(o, "signature", json_string(rp_sig_alg_name(info->sig_alg)));
        json_object_set_new(o, "key", json_path(key_path));
        json_object_set_new(o, "digest", json_string(hex));
        json_object_set_new(o, "image_size", json_integer((json_int_t)info->layout.total_size));
        json_object_set_new(o, "file_size", json_integer((json_int_t)file_size));
    }
    cli_output_print(output, o);
    json_decref(o);
}

/* Its getopt table; also the completion's and the help's (commands.c). */
const struct option cli_image_verify_options[] = {
    {"key",    required_argument, NULL, 'k'},
    {"output", required_argument, NULL, 'o'},
    {"help",   no_argument,       NULL, 'h'},
    {NULL,     0,                 NULL, 0  },
};

static int image_verify(int argc, char **argv)
{
    const char *key_paths[MAX_KEYS];
    uint8_t spki[MAX_KEYS][RP_PUBKEY_DER_MAX];
    rp_image_key_t keys[MAX_KEYS];
    cli_output_t output = CLI_OUTPUT_TEXT;
    rp_image_info_t info;
    uint64_t file_size = 0;
    size_t nkeys = 0;
    const char *path;
    rp_err_t err;
    int c;

    optind = 0;
    while ((c = getopt_long(argc, argv, "k:o:h", cli_image_verify_options, NULL)) != -1) {
        switch (c) {
        case 'k':
            if (nkeys == MAX_KEYS)
                return cli_usage("image ", "at most %d keys", MAX_KEYS);
            key_paths[nkeys++] = optarg;
            break;
        case 'o':
            if (!cli_parse_output(optarg, &output))
                return cli_usage("image ", "--output must be " CLI_OUTPUT_NAMES);
            break;
        case 'h': fputs(cli_image_usage, stdout); return CLI_OK;
        default: return cli_usage("image ", "bad option");
        }
    }
    if (argc - optind != 1)
        return cli_usage("image ", "image verify needs exactly one IMAGE");
    if (nkeys == 0)
        return cli_usage("image ", "image verify needs --key PUB.pem");
    path = argv[optind];

    for (size_t i = 0; i < nkeys; i++) {
        EVP_PKEY *key = NULL;
        bool is_private;

        if (cli_key_load(key_paths[i], &key, &is_private) != RP_OK)
            return CLI_FAIL;
        err = rp_key_spki(key, spki[i], sizeof(spki[i]), &keys[i].spki_len);
        EVP_PKEY_free(key);
        if (err != RP_OK) {
            cli_key_error(key_paths[i], err);
            return CLI_FAIL;
        }
        keys[i].spki = spki[i];
    }

    err = verify_path(path, keys, nkeys, &info, &file_size);
    if (output != CLI_OUTPUT_TEXT)
        print_verify_json(output, path, &info, err, err == RP_OK ? key_paths[info.signer] : NULL,
                          file_size);
    if (err != RP_OK) {
        log_image_error(path, "refused", err);
        if (err == RP_ERR_FORBIDDEN_TLV)
            explain_forbidden(path);
        if (err == RP_ERR_UNSUPPORTED)
            explain_unsupported(path);
        return CLI_FAIL;
    }
    if (output == CLI_OUTPUT_TEXT)
        print_valid(path, &info, key_paths[info.signer]);
    return CLI_OK;
}

/* What `show` learns: what the image says of itself (the core reads it), the TLVs as they are,
 * and the digest computed over the signed region. */
struct shown {
    rp_image_identity_t id; /* its layout is the image's */
    uint8_t digest[RP_SHA256_LEN];
    json_t *tlvs; /* array of TLV objects */
};

/* Every TLV, raw (type, length, hex value), for the listing. */
static rp_err_t collect_tlvs(const rp_image_io_t *io, struct shown *s)
{
    rp_image_tlv_iter_t it;
    rp_image_tlv_t tlv;
    bool found;
    rp_err_t err;

    rp_image_tlv_begin(&it, io, &s->id.layout);
    for (;;) {
        uint8_t *value;
        char *hex;
        json_t *t;
        const char *name;

        err = rp_image_tlv_next(&it, &tlv, &found);
        if (err != RP_OK || !found)
            return err;
        value = malloc(tlv.len + 1u);
        hex = malloc(2u * tlv.len + 1u);
        if (value == NULL || hex == NULL) {
            free(value);
            free(hex);
            return RP_ERR_NO_MEMORY;
        }
        err = rp_image_io_read(io, tlv.value_off, value, tlv.len);
        if (err == RP_OK)
            err = rp_hex_encode(value, tlv.len, hex, 2u * tlv.len + 1u);
        if (err == RP_OK) {
            name = rp_image_tlv_name(tlv.type);
            t = json_object();
            json_object_set_new(t, "area",
                                json_string(tlv.protected_area ? "protected" : "unprotected"));
            json_object_set_new(t, "type", json_integer(tlv.type));
            json_object_set_new(t, "name", name != NULL ? json_string(name) : json_null());
            json_object_set_new(t, "length", json_integer(tlv.len));
            json_object_set_new(
                t, "allowed",
                json_boolean(tlv.protected_area || rp_image_tlv_allowed_unprotected(tlv.type)));
            json_object_set_new(t, "value", json_string(hex));
            json_array_append_new(s->tlvs, t);
        }
        free(value);
        free(hex);
        if (err != RP_OK)
            return err;
    }
}

static json_t *flag_names(uint32_t flags)
{
    static const struct {
        uint32_t bit;
        const char *name;
    } names[] = {
        {RP_IMAGE_F_PIC,              "PIC"             },
        {RP_IMAGE_F_ENCRYPTED_AES128, "ENCRYPTED_AES128"},
        {RP_IMAGE_F_ENCRYPTED_AES256, "ENCRYPTED_AES256"},
        {RP_IMAGE_F_NON_BOOTABLE,     "NON_BOOTABLE"    },
        {RP_IMAGE_F_RAM_LOAD,         "RAM_LOAD"        },
        {RP_IMAGE_F_ROM_FIXED,        "ROM_FIXED"       },
    };
    json_t *a = json_array();

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (flags & names[i].bit)
            json_array_append_new(a, json_string(names[i].name));
    return a;
}

static json_t *show_json(const char *path, uint64_t file_size, struct shown *s)
{
    const rp_image_header_t *h = &s->id.layout.hdr;
    char ver[RP_IMAGE_VERSION_STR_MAX], hex[2 * RP_SHA256_LEN + 1], magic[11];
    const char *type = rp_image_type_name(s->id.type);
    json_t *o = json_object(), *v = json_object();

    if (rp_image_version_format(&h->version, ver, sizeof(ver)) != RP_OK ||
        rp_hex_encode(s->digest, sizeof(s->digest), hex, sizeof(hex)) != RP_OK)
        ver[0] = hex[0] = '\0';
    snprintf(magic, sizeof(magic), "0x%08x", h->magic);
    json_object_set_new(o, "file", json_path(path));
    json_object_set_new(o, "file_size", json_integer((json_int_t)file_size));
    json_object_set_new(o, "image_size", json_integer((json_int_t)s->id.layout.total_size));
    json_object_set_new(o, "magic", json_string(magic));
    json_object_set_new(o, "load_addr", json_integer(h->load_addr));
    json_object_set_new(o, "header_size", json_integer(h->hdr_size));
    json_object_set_new(o, "payload_size", json_integer(h->img_size));
    json_object_set_new(o, "protected_tlv_size", json_integer(h->prot_tlv_size));
    json_object_set_new(
        o, "unprotected_tlv_size",
        json_integer((json_int_t)(s->id.layout.total_size - s->id.layout.prot_end)));
    json_object_set_new(o, "flags", json_integer(h->flags));
    json_object_set_new(o, "flag_names", flag_names(h->flags));
    json_object_set_new(o, "version", json_string(ver));
    json_object_set_new(v, "major", json_integer(h->version.major));
    json_object_set_new(v, "minor", json_integer(h->version.minor));
    json_object_set_new(v, "revision", json_integer(h->version.revision));
    json_object_set_new(v, "build", json_integer(h->version.build));
    json_object_set_new(o, "version_parts", v);
    json_object_set_new(o, "security_counter",
                        s->id.has_security_counter ? json_integer(s->id.security_counter)
                                                   : json_null());
    json_object_set_new(o, "type", type != NULL ? json_string(type) : json_null());
    json_object_set_new(o, "digest", json_string(hex));
    json_object_set_new(o, "digest_matches",
                        !s->id.has_digest ? json_null()
                                          : json_boolean(rp_ct_memcmp(s->id.digest, s->digest,
                                                                      RP_SHA256_LEN) == 0));
    json_object_set_new(o, "tlvs", json_incref(s->tlvs));
    return o;
}

static void show_text(const char *path, json_t *o)
{
    size_t i;
    json_t *t;

    printf("image:              %s\n", path);
    printf("version:            %s\n", json_string_value(json_object_get(o, "version")));
    if (json_is_integer(json_object_get(o, "security_counter")))
        printf("security counter:   %lld\n",
               (long long)json_integer_value(json_object_get(o, "security_counter")));
    else
        printf("security counter:   none\n");
    if (json_is_string(json_object_get(o, "type")))
        printf("type:               %s\n", json_string_value(json_object_get(o, "type")));
    else
        printf("type:               none (no type TLV)\n");
    printf("header size:        0x%llx (%lld)\n",
           (long long)json_integer_value(json_object_get(o, "header_size")),
           (long long)json_integer_value(json_object_get(o, "header_size")));
    printf("payload size:       %lld\n",
           (long long)json_integer_value(json_object_get(o, "payload_size")));
    printf("image size:         %lld (file: %lld)\n",
           (long long)json_integer_value(json_object_get(o, "image_size")),
           (long long)json_integer_value(json_object_get(o, "file_size")));
    printf("load address:       0x%08llx\n",
           (long long)json_integer_value(json_object_get(o, "load_addr")));
    printf("flags:              0x%08llx",
           (long long)json_integer_value(json_object_get(o, "flags")));
    json_array_foreach(json_object_get(o, "flag_names"), i, t) printf(" %s", json_string_value(t));
    printf("\ndigest (SHA-256):   %s (%s)\n", json_string_value(json_object_get(o, "digest")),
           json_is_null(json_object_get(o, "digest_matches")) ? "no SHA256 TLV"
           : json_is_true(json_object_get(o, "digest_matches"))
               ? "matches the SHA256 TLV"
               : "DOES NOT MATCH the SHA256 TLV: modified");
    printf("TLVs:\n");
    json_array_foreach(json_object_get(o, "tlvs"), i, t)
    {
        const char *value = json_string_value(json_object_get(t, "value"));
        const char *name = json_string_value(json_object_get(t, "name"));
        int len = (int)strlen(value);

        printf("  %-11s 0x%04llx %-12s %5lld  %.*s%s%s\n",
               json_string_value(json_object_get(t, "area")),
               (long long)json_integer_value(json_object_get(t, "type")), name != NULL ? name : "?",
               (long long)json_integer_value(json_object_get(t, "length")),
               len > 2 * TEXT_VALUE_MAX ? 2 * TEXT_VALUE_MAX : len, value,
               len > 2 * TEXT_VALUE_MAX ? "..." : "",
               json_is_true(json_object_get(t, "allowed")) ? "" : "  FORBIDDEN here");
    }
}

/* Its getopt table; also the completion's and the help's (commands.c). */
const struct option cli_image_show_options[] = {
    {"output", required_argument, NULL, 'o'},
    {"help",   no_argument,       NULL, 'h'},
    {NULL,     0,                 NULL, 0  },
};

static int image_show(int argc, char **argv)
{
    cli_output_t output = CLI_OUTPUT_TEXT;
    rp_file_image_t img;
    struct shown s;
    uint8_t *scratch;
    const char *path;
    json_t *o;
    rp_err_t err;
    int c;

    optind = 0;
    while ((c = getopt_long(argc, argv, "o:h", cli_image_show_options, NULL)) != -1) {
        switch (c) {
        case 'o':
            if (!cli_parse_output(optarg, &output))
                return cli_usage("image ", "--output must be " CLI_OUTPUT_NAMES);
            break;
        case 'h': fputs(cli_image_usage, stdout); return CLI_OK;
        default: return cli_usage("image ", "bad option");
        }
    }
    if (argc - optind != 1)
        return cli_usage("image ", "image show needs exactly one IMAGE");
    path = argv[optind];

    memset(&s, 0, sizeof(s));
    err = rp_file_image_open(&img, path);
    if (err != RP_OK) {
        log_image_error(path, "cannot open", err);
        return CLI_FAIL;
    }
    scratch = malloc(RP_FILE_IMAGE_SCRATCH);
    s.tlvs = json_array();
    err = scratch == NULL || s.tlvs == NULL ? RP_ERR_NO_MEMORY : RP_OK;
    if (err == RP_OK)
        err = rp_image_identity_read(&img.io, &s.id);
    if (err == RP_OK)
        err = rp_image_hash(&img.io, &s.id.layout, scratch, RP_FILE_IMAGE_SCRATCH, s.digest);
    if (err == RP_OK)
        err = collect_tlvs(&img.io, &s);
    free(scratch);
    if (err != RP_OK) {
        log_image_error(path, "not a valid image", err);
        json_decref(s.tlvs);
        rp_file_image_close(&img);
        return CLI_FAIL;
    }
    o = show_json(path, img.io.size, &s);
    rp_file_image_close(&img);
    json_decref(s.tlvs);
    if (output != CLI_OUTPUT_TEXT) {
        cli_output_print(output, o);
    } else {
        show_text(path, o);
    }
    json_decref(o);
    return CLI_OK;
}

int cmd_image(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(cli_image_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (strcmp(argv[1], "upload") == 0 || strcmp(argv[1], "list") == 0)
        return cmd_ops(argc, argv); /* the service's copy of the tenant's images */
    if (strcmp(argv[1], "sign") == 0)
        return image_sign(argc - 1, argv + 1);
    if (strcmp(argv[1], "verify") == 0)
        return image_verify(argc - 1, argv + 1);
    if (strcmp(argv[1], "show") == 0)
        return image_show(argc - 1, argv + 1);
    return cli_usage("image ", "unknown image command '%s'", argv[1]);
}
