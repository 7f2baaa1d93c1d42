/*
 * Fuzz target: update metadata documents in their binary form (rp_md_doc_decode, and the kept
 * form around it, rp_md_kept_decode), as the monitor takes them from rampart-unpack and from the
 * files it keeps. The first byte names the kind (root, targets, capability); the rest is read as
 * the form itself, and as edits of a valid one: pairs of (u16 offset, byte) written over it.
 * Whatever is accepted must encode again to the very same bytes (one form per document), which
 * rp_md_doc_encode writes only for a document every rule accepts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rampart/key.h"
#include "rampart/metadata.h"

static union {
    rp_md_root_t r;
    rp_md_targets_t t;
    rp_md_capability_t c;
} doc;
static uint8_t base[3][RP_MD_DOC_BIN_MAX], again[RP_MD_DOC_BIN_MAX], edited[RP_MD_DOC_BIN_MAX];
static size_t base_len[3];

static void one(rp_md_kind_t kind, const uint8_t *bin, size_t len)
{
    static rp_md_signed_t s;
    char why[256] = "";
    size_t n;

    if (rp_md_doc_decode(kind, bin, len, &doc, why, sizeof(why)) == RP_OK) {
        if (rp_md_doc_encode(kind, &doc, again, sizeof(again), &n) != RP_OK || n != len ||
            memcmp(again, bin, len) != 0)
            abort();
    } else if (why[0] == '\0') {
        abort(); /* every refusal says why */
    }
    if (rp_md_kept_decode(kind, bin, len, &s, &doc, why, sizeof(why)) == RP_OK &&
        (s.payload == NULL || s.len == 0))
        abort();
    rp_md_signed_free(&s);
}

static void bases(void)
{
    EVP_PKEY *key = NULL;
    rp_md_role_t role = {.nkeys = 1, .threshold = 1};
    static const char device[] = "aa00000000000000000000000000000000000000000000000000000000000000";

    if (rp_key_generate(RP_SIG_ECDSA_P256, &key) != RP_OK ||
        rp_key_spki(key, role.spki[0], sizeof(role.spki[0]), &role.spki_len[0]) != RP_OK)
        abort();
    EVP_PKEY_free(key);
    memset(&doc, 0, sizeof(doc));
    strcpy(doc.r.tenant, "t_1");
    doc.r.version = 1;
    doc.r.expires = 2000000000;
    doc.r.root = doc.r.online = doc.r.images = role;
    if (rp_md_doc_encode(RP_MD_ROOT, &doc, base[0], sizeof(base[0]), &base_len[0]) != RP_OK)
        abort();
    memset(&doc, 0, sizeof(doc));
    strcpy(doc.t.tenant, "t_1");
    strcpy(doc.t.device, device);
    strcpy(doc.t.deployment, "d_1");
    doc.t.version = 5;
    doc.t.expires = 2000000000;
    doc.t.ntargets = 2;
    for (size_t i = 0; i < 2; i++) {
        rp_md_target_t *g = &doc.t.targets[i];
        strcpy(g->component, i == 0 ? "app" : "fw");
        strcpy(g->image, device);
        strcpy(g->image_hash, device);
        g->size = 10;
        g->version = (rp_image_version_t){1, 2, 3, 4};
        g->has_security_counter = i == 0;
        g->security_counter = i == 0 ? 7 : 0;
        g->has_delta = i == 1;
        if (g->has_delta) {
            strcpy(g->delta.from, device);
            strcpy(g->delta.sha256, device);
            g->delta.size = 3;
        }
    }
    if (rp_md_doc_encode(RP_MD_TARGETS, &doc, base[1], sizeof(base[1]), &base_len[1]) != RP_OK)
        abort();
    memset(&doc, 0, sizeof(doc));
    strcpy(doc.c.tenant, "t_1");
    strcpy(doc.c.device, device);
    doc.c.kind = RP_MD_CAP_DEVELOPMENT;
    doc.c.issued = 1800000000;
    doc.c.expires = 1800003600;
    if (rp_md_doc_encode(RP_MD_CAPABILITY, &doc, base[2], sizeof(base[2]), &base_len[2]) != RP_OK)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    rp_md_kind_t kind;
    size_t k;

    if (!ready) {
        bases();
        ready = true;
    }
    if (size < 1)
        return 0;
    k = data[0] % 3;
    kind = (rp_md_kind_t)(k + 1);
    one(kind, data + 1, size - 1);
    memcpy(edited, base[k], base_len[k]);
    for (size_t i = 1; i + 3 <= size; i += 3)
        edited[((size_t)data[i] << 8 | data[i + 1]) % base_len[k]] = data[i + 2];
    one(kind, edited, base_len[k]);
    return 0;
}
