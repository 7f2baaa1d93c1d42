/*
 * Test helpers; see testutil.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

tu_buf_t tu_load(const char *dir, const char *name)
{
    char path[4096];
    tu_buf_t b = {NULL, 0};
    FILE *f;
    long n;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "rb");
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "cannot read fixture %s\n", path);
        abort();
    }
    b.len = (size_t)n;
    b.data = malloc(b.len + 1);
    if (b.data == NULL || fread(b.data, 1, b.len, f) != b.len) {
        fprintf(stderr, "cannot read fixture %s\n", path);
        abort();
    }
    fclose(f);
    return b;
}

void tu_free(tu_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
}

static int mem_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    tu_mem_io_t *m = ctx;

    if (m->fail_reads || off > m->io.size || len > m->io.size - off)
        return -1;
    memcpy(buf, m->data + off, len);
    return 0;
}

void tu_mem_io_init(tu_mem_io_t *m, const uint8_t *data, size_t size)
{
    m->io.read = mem_read;
    m->io.ctx = m;
    m->io.mapped = NULL;
    m->io.size = size;
    m->data = data;
    m->fail_reads = false;
}

/* A source that counts how often each byte is fetched. */
struct counting_io {
    const uint8_t *data;
    uint8_t *count;
};

static int counting_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    struct counting_io *c = ctx;

    memcpy(buf, c->data + off, len);
    for (size_t i = 0; i < len; i++)
        if (c->count[off + i] < UINT8_MAX)
            c->count[off + i]++;
    return 0;
}

/* Verification must fetch each byte at most once (so a source cannot show it two faces). */
static void check_read_once(const uint8_t *data, size_t len, const rp_image_key_t *k, size_t nkeys,
                            rp_err_t expect)
{
    struct counting_io c = {data, calloc(len + 1, 1)};
    rp_image_io_t io = {counting_read, &c, NULL, len};
    rp_image_info_t info;
    uint8_t scratch[512];
    rp_err_t err;

    if (c.count == NULL)
        abort();
    err = rp_image_verify(&io, k, nkeys, scratch, sizeof(scratch), &info);
    if (err != expect) {
        fprintf(stderr, "counting source gave %s, not %s\n", rp_strerror(err), rp_strerror(expect));
        abort();
    }
    for (size_t i = 0; i < len; i++) {
        if (c.count[i] > 1) {
            fprintf(stderr, "byte %zu fetched %u times\n", i, c.count[i]);
            abort();
        }
    }
    free(c.count);
}

rp_err_t tu_verify(const uint8_t *data, size_t len, const tu_buf_t *keys, size_t nkeys,
                   rp_image_info_t *info)
{
    rp_image_key_t k[8];
    rp_image_info_t via_read, via_map;
    uint8_t scratch[4096];
    rp_image_io_t mapped = {NULL, NULL, data, len};
    tu_mem_io_t m;
    rp_err_t err, err_map;

    if (nkeys > 8)
        abort();
    for (size_t i = 0; i < nkeys; i++) {
        k[i].spki = keys[i].data;
        k[i].spki_len = keys[i].len;
    }
    /* Both ways of reaching an image must reach the same verdict. */
    tu_mem_io_init(&m, data, len);
    err = rp_image_verify(&m.io, k, nkeys, scratch, sizeof(scratch), &via_read);
    err_map = rp_image_verify(&mapped, k, nkeys, scratch, sizeof(scratch), &via_map);
    if (err != err_map || memcmp(&via_read, &via_map, sizeof(via_read)) != 0) {
        fprintf(stderr, "read and mapped verification disagree: %s / %s\n", rp_strerror(err),
                rp_strerror(err_map));
        abort();
    }
    check_read_once(data, len, k, nkeys, err);
    if (info != NULL)
        *info = via_read;
    return err;
}

void tu_split(const uint8_t *data, size_t len, tu_image_t *img)
{
    rp_image_layout_t layout;
    rp_image_tlv_iter_t it;
    rp_image_tlv_t tlv;
    tu_mem_io_t m;
    bool found;

    memset(img, 0, sizeof(*img));
    tu_mem_io_init(&m, data, len);
    if (rp_image_layout(&m.io, &layout) != RP_OK)
        abort();
    img->signed_len = (size_t)layout.prot_end;
    img->signed_part = malloc(img->signed_len);
    if (img->signed_part == NULL)
        abort();
    memcpy(img->signed_part, data, img->signed_len);
    rp_image_tlv_begin(&it, &m.io, &layout);
    while (rp_image_tlv_next(&it, &tlv, &found) == RP_OK && found) {
        if (tlv.protected_area)
            continue;
        if (img->ntlvs == TU_MAX_TLVS)
            abort();
        img->tlvs[img->ntlvs].type = tlv.type;
        img->tlvs[img->ntlvs].len = tlv.len;
        img->tlvs[img->ntlvs].value = data + tlv.value_off;
        img->ntlvs++;
    }
}

tu_buf_t tu_join(const tu_image_t *img)
{
    uint8_t area[8192];
    rp_tlv_writer_t w;
    size_t area_len;
    tu_buf_t b;

    rp_tlv_writer_init(&w, area, sizeof(area), RP_IMAGE_TLV_INFO_MAGIC);
    for (size_t i = 0; i < img->ntlvs; i++)
        if (rp_tlv_writer_add(&w, img->tlvs[i].type, img->tlvs[i].value, img->tlvs[i].len) != RP_OK)
            abort();
    if (rp_tlv_writer_finish(&w, &area_len) != RP_OK)
        abort();
    b.len = img->signed_len + area_len;
    b.data = malloc(b.len);
    if (b.data == NULL)
        abort();
    memcpy(b.data, img->signed_part, img->signed_len);
    memcpy(b.data + img->signed_len, area, area_len);
    return b;
}

void tu_image_free(tu_image_t *img)
{
    free(img->signed_part);
    img->signed_part = NULL;
}

int tu_find_tlv(const tu_image_t *img, uint16_t type)
{
    for (size_t i = 0; i < img->ntlvs; i++)
        if (img->tlvs[i].type == type)
            return (int)i;
    return -1;
}
