/*
 * `rampart app`: an app's tree or signed image checked offline, against the same rules the
 * service applies at upload and the device's monitor at install (apptree.h, manifest.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "rampart/apptree.h"
#include "rampart/file.h"
#include "rampart/image.h"
#include "rampart/log.h"
#include "rampart/manifest.h"

const char cli_app_usage[] =
    "Usage:\n"
    "  rampart app check DIR|IMAGE [--output text|json|table|yaml]\n"
    "      Check an app offline: a directory (app_manifest.json at its root and its files, as\n"
    "      `rampart image sign --type app` packs it) or a signed app image (its payload a tree,\n"
    "      or a single file made before manifests). Prints the capabilities and limits in\n"
    "      force. Exit 0 valid, 1 refused (with the reason), 2 usage.\n"
    "      An image's signature is not checked here (that needs a key: `rampart image verify`).\n";

static void print_list(const char *label, size_t n,
                       const char *(*item)(const rp_manifest_t *, size_t, char *, size_t),
                       const rp_manifest_t *m)
{
    char buf[RP_MANIFEST_HOST_MAX + 16];

    printf("  %-24s", label);
    if (n == 0)
        printf("none");
    for (size_t i = 0; i < n; i++)
        printf("%s%s", i > 0 ? ", " : "", item(m, i, buf, sizeof(buf)));
    putchar('\n');
}

static const char *arg_item(const rp_manifest_t *m, size_t i, char *buf, size_t cap)
{
    snprintf(buf, cap, "\"%s\"", m->args[i]);
    return buf;
}

/* The manifest's own spelling of each connection (one owner: rp_manifest_to_json). */
static const char *conn_item(const rp_manifest_t *m, size_t i, char *buf, size_t cap)
{
    json_t *j = rp_manifest_to_json(m);
    const char *s = json_string_value(json_array_get(json_object_get(j, "AllowedConnections"), i));

    snprintf(buf, cap, "%s", s != NULL ? s : "?");
    json_decref(j);
    return buf;
}

static const char *tcp_item(const rp_manifest_t *m, size_t i, char *buf, size_t cap)
{
    snprintf(buf, cap, "%u", (unsigned)m->tcp_ports[i]);
    return buf;
}

static const char *udp_item(const rp_manifest_t *m, size_t i, char *buf, size_t cap)
{
    snprintf(buf, cap, "%u", (unsigned)m->udp_ports[i]);
    return buf;
}

static const char *dev_item(const rp_manifest_t *m, size_t i, char *buf, size_t cap)
{
    (void)buf;
    (void)cap;
    return m->devices[i];
}

static const char *app_item(const rp_manifest_t *m, size_t i, char *buf, size_t cap)
{
    (void)buf;
    (void)cap;
    return m->app_connections[i];
}

static void print_text(const char *path, const char *what, const rp_manifest_t *m)
{
    printf("%s: valid: %s\n", path, what);
    if (!m->legacy) {
        printf("  %-24s%s\n", "name", m->name);
        printf("  %-24s%s\n", "component", m->component_id);
        printf("  %-24s%s\n", "entry point", m->entry_point);
        print_list("arguments", m->nargs, arg_item, m);
    }
    print_list("connections", m->nconnections, conn_item, m);
    print_list("TCP server ports", m->ntcp_ports, tcp_item, m);
    print_list("UDP server ports", m->nudp_ports, udp_item, m);
    print_list("devices", m->ndevices, dev_item, m);
    print_list("app connections", m->napp_connections, app_item, m);
    printf("  %-24s%s\n", "device authentication", m->device_authentication ? "yes" : "no");
    if (m->storage_kb > 0)
        printf("  %-24s%u KB\n", "mutable storage", (unsigned)m->storage_kb);
    else
        printf("  %-24snone\n", "mutable storage");
    printf("  %-24s%u KB\n", "memory limit", (unsigned)m->memory_kb);
    printf("  %-24s%u\n", "processes (pids) limit", (unsigned)m->pids);
    printf("  %-24s%u%% of one CPU\n", "CPU limit", (unsigned)m->cpu_percent);
    if (m->watchdog_seconds > 0)
        printf("  %-24s%u s\n", "watchdog", (unsigned)m->watchdog_seconds);
    else
        printf("  %-24snone\n", "watchdog");
}

static int report(const char *path, cli_output_t output, rp_err_t err, const char *why,
                  const char *kind, const rp_manifest_t *m)
{
    if (output != CLI_OUTPUT_TEXT) {
        json_t *o = json_object();
        json_t *p = json_string(path); /* NULL for a name that is not UTF-8 */
        json_object_set_new(o, "path", p != NULL ? p : json_null());
        json_object_set_new(o, "valid", json_boolean(err == RP_OK));
        if (err != RP_OK) {
            json_object_set_new(o, "error", json_string(why));
        } else {
            json_object_set_new(o, "kind", json_string(kind));
            json_object_set_new(o, "manifest", m->legacy ? json_null() : rp_manifest_to_json(m));
            if (m->legacy) {
                rp_manifest_t shown = *m;
                shown.legacy = false; /* what is in force: the defaults, no capabilities */
                json_object_set_new(o, "in_force", rp_manifest_to_json(&shown));
            } else {
                json_object_set_new(o, "in_force", rp_manifest_to_json(m));
            }
        }
        cli_output_print(output, o);
        json_decref(o);
    }
    if (err != RP_OK) {
        rp_log_error("%s: refused: %s", path, why);
        return CLI_FAIL;
    }
    if (output == CLI_OUTPUT_TEXT)
        print_text(path,
                   strcmp(kind, "tree") == 0
                       ? "app tree"
                       : "single-file app made before manifests: it runs with no "
                         "capabilities and the default limits",
                   m);
    return CLI_OK;
}

/* A directory: everything `image sign --type app` would check, packing into nothing. */
static rp_err_t check_dir(const char *path, rp_manifest_t *m, char *why, size_t cap)
{
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    rp_err_t err;

    if (fd < 0) {
        snprintf(why, cap, "cannot open /dev/null: %s", strerror(errno));
        return RP_ERR_IO;
    }
    err = rp_apptree_pack(path, fd, m, why, cap);
    close(fd);
    return err;
}

/* A signed image: it parses and its digest matches; an app's; its payload a tree or legacy. */
static rp_err_t check_image(const char *path, rp_manifest_t *m, const char **kind, char *why,
                            size_t cap)
{
    uint8_t digest[RP_SHA256_LEN], *scratch = malloc(RP_FILE_IMAGE_SCRATCH);
    rp_apptree_kind_t k;
    rp_image_identity_t id;
    rp_file_image_t img;
    rp_err_t err;

    if (scratch == NULL)
        return RP_ERR_NO_MEMORY;
    err = rp_file_image_open(&img, path);
    if (err != RP_OK) {
        free(scratch);
        snprintf(why, cap, "cannot open it: %s", rp_strerror(err));
        return err;
    }
    err = rp_image_identity_read(&img.io, &id);
    if (err == RP_OK)
        err = rp_image_hash(&img.io, &id.layout, scratch, RP_FILE_IMAGE_SCRATCH, digest);
    free(scratch);
    if (err != RP_OK) {
        snprintf(why, cap, "not a valid image: %s", rp_strerror(err));
        goto out;
    }
    if (!id.has_digest || rp_ct_memcmp(id.digest, digest, RP_SHA256_LEN) != 0) {
        err = RP_ERR_HASH_MISMATCH;
        snprintf(why, cap, "not a valid image: %s", rp_strerror(err));
        goto out;
    }
    if (id.type != RP_IMAGE_TYPE_NONE && id.type != RP_IMAGE_TYPE_APP) {
        err = RP_ERR_INVALID_ARG;
        snprintf(why, cap, "an image of type %s, not an app",
                 rp_image_type_name(id.type) != NULL ? rp_image_type_name(id.type) : "unknown");
        goto out;
    }
    err = rp_apptree_kind(img.fd, id.layout.hdr.hdr_size, id.layout.hdr.img_size, &k);
    if (err != RP_OK) {
        snprintf(why, cap, "cannot read its payload: %s", rp_strerror(err));
        goto out;
    }
    if (k == RP_APPTREE_TREE) {
        *kind = "tree";
        err = rp_apptree_check(img.fd, id.layout.hdr.hdr_size, id.layout.hdr.img_size, m, why, cap);
    } else {
        *kind = "legacy";
        rp_manifest_legacy(m, "", "");
    }
out:
    rp_file_image_close(&img);
    return err;
}

/* Its getopt table; also the completion's and the help's (commands.c). */
const struct option cli_app_check_options[] = {
    {"output", required_argument, NULL, 'o'},
    {"help",   no_argument,       NULL, 'h'},
    {NULL,     0,                 NULL, 0  },
};

static int app_check(int argc, char **argv)
{
    cli_output_t output = CLI_OUTPUT_TEXT;
    const char *path, *kind = "tree";
    rp_manifest_t *m = malloc(sizeof(*m));
    char why[512] = "";
    struct stat st;
    rp_err_t err;
    int c, rc;

    if (m == NULL)
        return CLI_FAIL;
    optind = 0;
    while ((c = getopt_long(argc, argv, "o:h", cli_app_check_options, NULL)) != -1) {
        switch (c) {
        case 'o':
            if (!cli_parse_output(optarg, &output)) {
                free(m);
                return cli_usage("app ", "--output must be " CLI_OUTPUT_NAMES);
            }
            break;
        case 'h':
            fputs(cli_app_usage, stdout);
            free(m);
            return CLI_OK;
        default: free(m); return cli_usage("app ", "bad option");
        }
    }
    if (argc - optind != 1) {
        free(m);
        return cli_usage("app ", "app check needs exactly one DIR or IMAGE");
    }
    path = argv[optind];
    if (stat(path, &st) != 0) {
        snprintf(why, sizeof(why), "%s", strerror(errno));
        err = RP_ERR_NOT_FOUND;
    } else if (S_ISDIR(st.st_mode)) {
        err = check_dir(path, m, why, sizeof(why));
    } else {
        err = check_image(path, m, &kind, why, sizeof(why));
    }
    if (err != RP_OK && why[0] == '\0')
        snprintf(why, sizeof(why), "%s", rp_strerror(err));
    rc = report(path, output, err, why, kind, m);
    free(m);
    return rc;
}

int cmd_app(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(cli_app_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (strcmp(argv[1], "check") == 0)
        return app_check(argc - 1, argv + 1);
    return cli_usage("app ", "unknown app command '%s'", argv[1]);
}
