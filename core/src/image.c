/*
 * The MCUboot image format: header codec, the structure walk of both TLV areas (for inspection),
 * and verification against trusted keys, which reads every byte once. Every size read from an
 * image is checked against the source's size before it is used; all arithmetic on offsets is done
 * in 64 bits so that no 32-bit field can wrap it.
 */
#include <string.h>

#include "rampart/bytes.h"
#include "rampart/image.h"

/* Field offsets of the 32-byte header: MCUboot's struct image_header, pinned. */
enum {
    OFF_MAGIC = 0,
    OFF_LOAD_ADDR = 4,
    OFF_HDR_SIZE = 8,
    OFF_PROT_TLV_SIZE = 10,
    OFF_IMG_SIZE = 12,
    OFF_FLAGS = 16,
    OFF_VER_MAJOR = 20,
    OFF_VER_MINOR = 21,
    OFF_VER_REVISION = 22,
    OFF_VER_BUILD = 24,
    OFF_PAD = 28,
};
_Static_assert(OFF_PAD + 4 == RP_IMAGE_HEADER_SIZE, "MCUboot's image header is 32 bytes");
_Static_assert(RP_IMAGE_TLV_INFO_SIZE == 4 && RP_IMAGE_TLV_HDR_SIZE == 4,
               "MCUboot's TLV info and TLV headers are 4 bytes");

/* Key lookup results while walking the unprotected area. */
#define KEY_NONE (-1)      /* no key TLV since the last signature */
#define KEY_UNTRUSTED (-2) /* the last key TLV names a key we do not trust */

static bool io_usable(const rp_image_io_t *io)
{
    return io != NULL && (io->read != NULL || io->mapped != NULL) &&
           (io->mapped == NULL || io->size <= SIZE_MAX);
}

/* Read exactly len bytes at off, refusing anything past the end of the source. */
static rp_err_t io_read(const rp_image_io_t *io, uint64_t off, void *buf, size_t len)
{
    if (off > io->size || len > io->size - off)
        return RP_ERR_TRUNCATED;
    if (io->mapped != NULL) {
        memcpy(buf, io->mapped + off, len);
        return RP_OK;
    }
    if (io->read(io->ctx, off, buf, len) != 0)
        return RP_ERR_IO;
    return RP_OK;
}

rp_err_t rp_image_io_read(const rp_image_io_t *io, uint64_t off, void *buf, size_t len)
{
    if (!io_usable(io) || (buf == NULL && len > 0))
        return RP_ERR_INVALID_ARG;
    return io_read(io, off, buf, len);
}

rp_err_t rp_image_header_decode(const uint8_t raw[RP_IMAGE_HEADER_SIZE], rp_image_header_t *hdr)
{
    rp_image_header_t h;

    if (raw == NULL || hdr == NULL)
        return RP_ERR_INVALID_ARG;
    h.magic = (uint32_t)rp_le_get(raw + OFF_MAGIC, 4);
    h.load_addr = (uint32_t)rp_le_get(raw + OFF_LOAD_ADDR, 4);
    h.hdr_size = (uint16_t)rp_le_get(raw + OFF_HDR_SIZE, 2);
    h.prot_tlv_size = (uint16_t)rp_le_get(raw + OFF_PROT_TLV_SIZE, 2);
    h.img_size = (uint32_t)rp_le_get(raw + OFF_IMG_SIZE, 4);
    h.flags = (uint32_t)rp_le_get(raw + OFF_FLAGS, 4);
    h.version.major = raw[OFF_VER_MAJOR];
    h.version.minor = raw[OFF_VER_MINOR];
    h.version.revision = (uint16_t)rp_le_get(raw + OFF_VER_REVISION, 2);
    h.version.build = (uint32_t)rp_le_get(raw + OFF_VER_BUILD, 4);

    if (h.magic != RP_IMAGE_MAGIC)
        return RP_ERR_BAD_MAGIC;
    if (h.hdr_size < RP_IMAGE_HEADER_SIZE)
        return RP_ERR_BAD_HEADER;
    if (h.prot_tlv_size != 0 && h.prot_tlv_size < RP_IMAGE_TLV_INFO_SIZE)
        return RP_ERR_BAD_HEADER;
    *hdr = h;
    return RP_OK;
}

void rp_image_header_encode(const rp_image_header_t *hdr, uint8_t raw[RP_IMAGE_HEADER_SIZE])
{
    rp_le_put(raw + OFF_MAGIC, hdr->magic, 4);
    rp_le_put(raw + OFF_LOAD_ADDR, hdr->load_addr, 4);
    rp_le_put(raw + OFF_HDR_SIZE, hdr->hdr_size, 2);
    rp_le_put(raw + OFF_PROT_TLV_SIZE, hdr->prot_tlv_size, 2);
    rp_le_put(raw + OFF_IMG_SIZE, hdr->img_size, 4);
    rp_le_put(raw + OFF_FLAGS, hdr->flags, 4);
    raw[OFF_VER_MAJOR] = hdr->version.major;
    raw[OFF_VER_MINOR] = hdr->version.minor;
    rp_le_put(raw + OFF_VER_REVISION, hdr->version.revision, 2);
    rp_le_put(raw + OFF_VER_BUILD, hdr->version.build, 4);
    rp_le_put(raw + OFF_PAD, 0, 4);
}

/* Read a TLV info header at off. OUT: *tot, the area's size including the info header. */
static rp_err_t read_tlv_info(const rp_image_io_t *io, uint64_t off, uint16_t magic, uint16_t *tot)
{
    uint8_t info[RP_IMAGE_TLV_INFO_SIZE];
    rp_err_t err = io_read(io, off, info, sizeof(info));

    if (err != RP_OK)
        return err;
    if ((uint16_t)rp_le_get(info, 2) != magic)
        return RP_ERR_BAD_TLV;
    *tot = (uint16_t)rp_le_get(info + 2, 2);
    if (*tot < RP_IMAGE_TLV_INFO_SIZE)
        return RP_ERR_BAD_TLV;
    return RP_OK;
}

rp_err_t rp_image_layout(const rp_image_io_t *io, rp_image_layout_t *layout)
{
    uint8_t raw[RP_IMAGE_HEADER_SIZE];
    rp_image_layout_t l;
    uint16_t tot;
    rp_err_t err;

    if (!io_usable(io) || layout == NULL)
        return RP_ERR_INVALID_ARG;
    memset(&l, 0, sizeof(l));
    err = io_read(io, 0, raw, sizeof(raw));
    if (err != RP_OK)
        return err;
    err = rp_image_header_decode(raw, &l.hdr);
    if (err != RP_OK)
        return err;

    l.payload_end = (uint64_t)l.hdr.hdr_size + l.hdr.img_size;
    if (l.hdr.prot_tlv_size != 0) {
        err = read_tlv_info(io, l.payload_end, RP_IMAGE_TLV_PROT_INFO_MAGIC, &tot);
        if (err != RP_OK)
            return err;
        /* The header's copy of the size is what is signed; the two must agree. */
        if (tot != l.hdr.prot_tlv_size)
            return RP_ERR_BAD_TLV;
    }
    l.prot_end = l.payload_end + l.hdr.prot_tlv_size;
    err = read_tlv_info(io, l.prot_end, RP_IMAGE_TLV_INFO_MAGIC, &tot);
    if (err != RP_OK)
        return err;
    l.total_size = l.prot_end + tot;
    if (l.total_size > io->size)
        return RP_ERR_TRUNCATED;
    *layout = l;
    return RP_OK;
}

void rp_image_tlv_begin(rp_image_tlv_iter_t *it, const rp_image_io_t *io,
                        const rp_image_layout_t *layout)
{
    it->io = io;
    it->prot_end = layout->prot_end;
    it->end = layout->total_size;
    if (layout->hdr.prot_tlv_size != 0)
        it->off = layout->payload_end + RP_IMAGE_TLV_INFO_SIZE;
    else
        it->off = layout->prot_end + RP_IMAGE_TLV_INFO_SIZE;
}

rp_err_t rp_image_tlv_next(rp_image_tlv_iter_t *it, rp_image_tlv_t *tlv, bool *found)
{
    uint8_t hdr[RP_IMAGE_TLV_HDR_SIZE];
    uint64_t area_end;
    bool prot;
    rp_err_t err;

    if (it == NULL || tlv == NULL || found == NULL)
        return RP_ERR_INVALID_ARG;
    *found = false;
    if (it->off == it->prot_end)
        it->off += RP_IMAGE_TLV_INFO_SIZE; /* step over the unprotected area's info header */
    if (it->off == it->end)
        return RP_OK;
    if (it->off > it->end)
        return RP_ERR_BAD_TLV;

    prot = it->off < it->prot_end;
    area_end = prot ? it->prot_end : it->end;
    if (area_end - it->off < RP_IMAGE_TLV_HDR_SIZE)
        return RP_ERR_BAD_TLV;
    err = io_read(it->io, it->off, hdr, sizeof(hdr));
    if (err != RP_OK)
        return err;
    tlv->type = (uint16_t)rp_le_get(hdr, 2);
    tlv->len = (uint16_t)rp_le_get(hdr + 2, 2);
    tlv->value_off = it->off + RP_IMAGE_TLV_HDR_SIZE;
    tlv->protected_area = prot;
    if (tlv->len > area_end - tlv->value_off)
        return RP_ERR_BAD_TLV;
    it->off = tlv->value_off + tlv->len;
    *found = true;
    return RP_OK;
}

bool rp_image_tlv_allowed_unprotected(uint16_t type)
{
    /* MCUboot's allow-list: what holds the hash, the key and the signature, and what holds an
     * encryption key. Everything else must be covered by the signature. */
    switch (type) {
    case RP_TLV_KEYHASH:
    case RP_TLV_PUBKEY:
    case RP_TLV_SHA256:
    case RP_TLV_SHA384:
    case RP_TLV_SHA512:
    case RP_TLV_RSA2048_PSS:
    case RP_TLV_ECDSA224:
    case RP_TLV_ECDSA_SIG:
    case RP_TLV_RSA3072_PSS:
    case RP_TLV_ED25519:
    case RP_TLV_SIG_PURE:
    case RP_TLV_ENC_RSA2048:
    case RP_TLV_ENC_KW:
    case RP_TLV_ENC_EC256:
    case RP_TLV_ENC_X25519: return true;
    default: return false;
    }
}

const char *rp_image_tlv_name(uint16_t type)
{
    switch (type) {
    case RP_TLV_KEYHASH: return "KEYHASH";
    case RP_TLV_PUBKEY: return "PUBKEY";
    case RP_TLV_SHA256: return "SHA256";
    case RP_TLV_SHA384: return "SHA384";
    case RP_TLV_SHA512: return "SHA512";
    case RP_TLV_RSA2048_PSS: return "RSA2048_PSS";
    case RP_TLV_ECDSA224: return "ECDSA224";
    case RP_TLV_ECDSA_SIG: return "ECDSA_SIG";
    case RP_TLV_RSA3072_PSS: return "RSA3072_PSS";
    case RP_TLV_ED25519: return "ED25519";
    case RP_TLV_SIG_PURE: return "SIG_PURE";
    case RP_TLV_ENC_RSA2048: return "ENC_RSA2048";
    case RP_TLV_ENC_KW: return "ENC_KW";
    case RP_TLV_ENC_EC256: return "ENC_EC256";
    case RP_TLV_ENC_X25519: return "ENC_X25519";
    case RP_TLV_DEPENDENCY: return "DEPENDENCY";
    case RP_TLV_SEC_CNT: return "SEC_CNT";
    case RP_TLV_BOOT_RECORD: return "BOOT_RECORD";
    case RP_TLV_IMAGE_TYPE: return "RAMPART_TYPE";
    default: return NULL;
    }
}

static bool is_signature_tlv(uint16_t type)
{
    return type == RP_TLV_ECDSA_SIG || type == RP_TLV_ED25519 || type == RP_TLV_ECDSA224 ||
           type == RP_TLV_RSA2048_PSS || type == RP_TLV_RSA3072_PSS;
}

/* TLVs whose meaning is "how this image is signed": only meaningful outside the signed region. */
static bool is_signing_tlv(uint16_t type)
{
    return type == RP_TLV_KEYHASH || type == RP_TLV_PUBKEY || type == RP_TLV_SHA256 ||
           type == RP_TLV_SHA384 || type == RP_TLV_SHA512 || type == RP_TLV_SIG_PURE ||
           is_signature_tlv(type);
}

rp_err_t rp_image_hash(const rp_image_io_t *io, const rp_image_layout_t *layout, uint8_t *scratch,
                       size_t scratch_len, uint8_t digest[RP_SHA256_LEN])
{
    rp_sha256_t sha;
    uint64_t off = 0;
    rp_err_t err;

    if (!io_usable(io) || layout == NULL || scratch == NULL || scratch_len == 0 || digest == NULL)
        return RP_ERR_INVALID_ARG;
    if (layout->prot_end > io->size)
        return RP_ERR_TRUNCATED;
    err = rp_sha256_init(&sha);
    if (err != RP_OK)
        return err;
    if (io->mapped != NULL) {
        err = rp_sha256_update(&sha, io->mapped, (size_t)layout->prot_end);
        if (err != RP_OK) {
            rp_wipe(&sha, sizeof(sha));
            return err;
        }
        off = layout->prot_end;
    }
    while (off < layout->prot_end) {
        uint64_t left = layout->prot_end - off;
        size_t n = left < scratch_len ? (size_t)left : scratch_len;

        err = io_read(io, off, scratch, n);
        if (err == RP_OK)
            err = rp_sha256_update(&sha, scratch, n);
        if (err != RP_OK) {
            rp_wipe(&sha, sizeof(sha));
            return err;
        }
        off += n;
    }
    return rp_sha256_final(&sha, digest);
}

/*
 * Verification fetches every byte of the image exactly once, and decides only from what it
 * fetched: the header is decoded from the very bytes that are hashed, the protected TLVs are
 * parsed from the very chunks that are hashed, and each unprotected TLV is read once and checked
 * where it is used. A source whose bytes change between reads (a flash chip under attack, a file
 * rewritten during the call) can therefore make verification fail, never pass with bytes other
 * than the ones the signature covers.
 */

/* Flags whose meaning we implement (or that do not change what the bytes mean). Anything else —
 * encryption, compression, flags defined later — is refused rather than half-understood. */
#define SUPPORTED_FLAGS                                                                            \
    (RP_IMAGE_F_PIC | RP_IMAGE_F_NON_BOOTABLE | RP_IMAGE_F_RAM_LOAD | RP_IMAGE_F_ROM_FIXED)

/*
 * The rules for the TLVs whose meaning the core reads, shared by verification (which parses the
 * protected area from the very chunks it hashes) and rp_image_identity_read() (which walks the
 * areas), so that the two can never disagree on what an image says.
 */

/* What the protected area says: the security counter and the type. */
struct prot_facts {
    bool has_security_counter;
    uint32_t security_counter;
    rp_image_type_t type;
};

/* The most bytes of a protected value that are interpreted (SEC_CNT's four). */
#define PROT_VALUE_MAX 4

/* May a TLV of this type and length appear in the protected area, after what f has seen? */
static rp_err_t prot_tlv_check(const struct prot_facts *f, uint16_t type, uint16_t len)
{
    if (is_signing_tlv(type))
        return RP_ERR_BAD_TLV; /* a hash or signature inside what is signed means nothing */
    if (type == RP_TLV_SEC_CNT && (f->has_security_counter || len != 4))
        return RP_ERR_BAD_TLV; /* two counters would leave the reader to pick one */
    if (type == RP_TLV_IMAGE_TYPE && (f->type != RP_IMAGE_TYPE_NONE || len != 1))
        return RP_ERR_BAD_TLV;
    return RP_OK;
}

/* Record what a protected TLV that passed prot_tlv_check() says; value holds its first
 * PROT_VALUE_MAX bytes (all of a SEC_CNT or a type). */
static rp_err_t prot_tlv_value(struct prot_facts *f, uint16_t type, const uint8_t *value)
{
    switch (type) {
    case RP_TLV_SEC_CNT:
        f->has_security_counter = true;
        f->security_counter = (uint32_t)rp_le_get(value, 4);
        return RP_OK;
    case RP_TLV_IMAGE_TYPE:
        if (value[0] < RP_IMAGE_TYPE_FIRMWARE || value[0] > RP_IMAGE_TYPE_SYSTEM)
            return RP_ERR_BAD_TLV;
        f->type = (rp_image_type_t)value[0];
        return RP_OK;
    default: return RP_OK; /* other protected TLVs are signed data we do not interpret */
    }
}

/* Whether an unprotected TLV naming the digest or the key has the length its kind has. */
static bool unprot_len_ok(uint16_t type, uint16_t len)
{
    switch (type) {
    case RP_TLV_SHA256:
    case RP_TLV_KEYHASH: return len == RP_SHA256_LEN;
    case RP_TLV_PUBKEY: return len > 0 && len <= RP_PUBKEY_DER_MAX;
    default: return true;
    }
}

/* The key hash a KEYHASH or PUBKEY TLV (of a checked length) names, read once through buf
 * (RP_PUBKEY_DER_MAX bytes). */
static rp_err_t key_tlv_hash(const rp_image_io_t *io, const rp_image_tlv_t *tlv, uint8_t *buf,
                             uint8_t key_hash[RP_SHA256_LEN])
{
    rp_err_t err = io_read(io, tlv->value_off, buf, tlv->len);

    if (err != RP_OK)
        return err;
    if (tlv->type == RP_TLV_PUBKEY)
        return rp_sha256(buf, tlv->len, key_hash);
    memcpy(key_hash, buf, RP_SHA256_LEN);
    return RP_OK;
}

/* The streaming parser of the protected TLV area, fed the same chunks the hash is fed. */
struct prot_parser {
    uint16_t area_len; /* from the header: the info header's total must agree */
    uint32_t pos;      /* bytes of the area consumed */
    bool in_info;      /* still reading the 4-byte info header */
    uint8_t hdr[4];    /* the info or TLV header being collected */
    uint8_t hdr_got;
    uint16_t type; /* the TLV whose value is being read */
    uint16_t value_left;
    uint8_t value[PROT_VALUE_MAX]; /* the first bytes of the value (all we interpret) */
    uint8_t value_got;
    struct prot_facts facts;
};

static rp_err_t prot_finish_value(struct prot_parser *p)
{
    return prot_tlv_value(&p->facts, p->type, p->value);
}

/* A TLV header is complete: check it against what may appear in the signed area. */
static rp_err_t prot_start_tlv(struct prot_parser *p)
{
    uint16_t len = (uint16_t)rp_le_get(p->hdr + 2, 2);
    rp_err_t err;

    p->type = (uint16_t)rp_le_get(p->hdr, 2);
    if (len > p->area_len - p->pos)
        return RP_ERR_BAD_TLV;
    err = prot_tlv_check(&p->facts, p->type, len);
    if (err != RP_OK)
        return err;
    p->value_left = len;
    p->value_got = 0;
    return len == 0 ? prot_finish_value(p) : RP_OK;
}

static rp_err_t prot_feed(struct prot_parser *p, const uint8_t *data, size_t n)
{
    rp_err_t err;

    for (size_t i = 0; i < n; i++) {
        uint8_t b = data[i];

        if (p->pos >= p->area_len)
            return RP_ERR_BAD_TLV;
        p->pos++;
        if (p->value_left > 0) {
            if (p->value_got < sizeof(p->value))
                p->value[p->value_got++] = b;
            if (--p->value_left == 0 && (err = prot_finish_value(p)) != RP_OK)
                return err;
            continue;
        }
        p->hdr[p->hdr_got++] = b;
        if (p->hdr_got < sizeof(p->hdr))
            continue;
        p->hdr_got = 0;
        if (p->in_info) {
            p->in_info = false;
            /* The header's copy of the size and the area's own must agree. */
            if ((uint16_t)rp_le_get(p->hdr, 2) != RP_IMAGE_TLV_PROT_INFO_MAGIC ||
                (uint16_t)rp_le_get(p->hdr + 2, 2) != p->area_len)
                return RP_ERR_BAD_TLV;
        } else if ((err = prot_start_tlv(p)) != RP_OK) {
            return err;
        }
    }
    return RP_OK;
}

/* The area must end exactly where its last TLV does. */
static rp_err_t prot_end(const struct prot_parser *p)
{
    return p->pos == p->area_len && !p->in_info && p->hdr_got == 0 && p->value_left == 0
               ? RP_OK
               : RP_ERR_BAD_TLV;
}

/*
 * Hash [from, to) and, when parser is set, parse the same bytes. Parsed bytes always pass through
 * scratch (one fetch, then hash and parse that copy); payload bytes of a mapped source are hashed
 * in place.
 */
static rp_err_t hash_range(const rp_image_io_t *io, rp_sha256_t *sha, uint64_t from, uint64_t to,
                           uint8_t *scratch, size_t scratch_len, struct prot_parser *parser)
{
    rp_err_t err;

    if (to > io->size)
        return RP_ERR_TRUNCATED;
    if (io->mapped != NULL && parser == NULL)
        return rp_sha256_update(sha, io->mapped + from, (size_t)(to - from));
    while (from < to) {
        size_t n = to - from < scratch_len ? (size_t)(to - from) : scratch_len;

        err = io_read(io, from, scratch, n);
        if (err == RP_OK)
            err = rp_sha256_update(sha, scratch, n);
        if (err == RP_OK && parser != NULL)
            err = prot_feed(parser, scratch, n);
        if (err != RP_OK)
            return err;
        from += n;
    }
    return RP_OK;
}

/* Hash the signed region, decoding the header and the protected area on the way. OUT: r. */
static rp_err_t hash_signed_region(const rp_image_io_t *io, uint8_t *scratch, size_t scratch_len,
                                   rp_image_info_t *r)
{
    uint8_t raw[RP_IMAGE_HEADER_SIZE];
    struct prot_parser parser;
    rp_image_layout_t *l = &r->layout;
    rp_sha256_t sha;
    rp_err_t err;

    err = io_read(io, 0, raw, sizeof(raw));
    if (err == RP_OK)
        err = rp_image_header_decode(raw, &l->hdr);
    if (err != RP_OK)
        return err;
    if (l->hdr.flags & ~SUPPORTED_FLAGS)
        return RP_ERR_UNSUPPORTED;
    l->payload_end = (uint64_t)l->hdr.hdr_size + l->hdr.img_size;
    l->prot_end = l->payload_end + l->hdr.prot_tlv_size;
    /* Refuse a truncated image before spending a hash on it; the reads below check again. */
    if (l->prot_end + RP_IMAGE_TLV_INFO_SIZE > io->size)
        return RP_ERR_TRUNCATED;

    memset(&parser, 0, sizeof(parser));
    parser.area_len = l->hdr.prot_tlv_size;
    parser.in_info = true;
    err = rp_sha256_init(&sha);
    if (err != RP_OK)
        return err;
    err = rp_sha256_update(&sha, raw, sizeof(raw));
    if (err == RP_OK)
        err = hash_range(io, &sha, sizeof(raw), l->payload_end, scratch, scratch_len, NULL);
    if (err == RP_OK && l->hdr.prot_tlv_size != 0)
        err = hash_range(io, &sha, l->payload_end, l->prot_end, scratch, scratch_len, &parser);
    if (err == RP_OK && l->hdr.prot_tlv_size != 0)
        err = prot_end(&parser);
    if (err != RP_OK) {
        rp_wipe(&sha, sizeof(sha));
        return err;
    }
    r->has_security_counter = parser.facts.has_security_counter;
    r->security_counter = parser.facts.security_counter;
    r->type = parser.facts.type;
    return rp_sha256_final(&sha, r->digest);
}

/* The index of the trusted key whose SPKI hashes to key_hash, or KEY_UNTRUSTED. */
static rp_err_t find_key(const rp_image_key_t *keys, size_t nkeys,
                         const uint8_t key_hash[RP_SHA256_LEN], int *index)
{
    uint8_t h[RP_SHA256_LEN];
    rp_err_t err;

    *index = KEY_UNTRUSTED;
    for (size_t i = 0; i < nkeys; i++) {
        err = rp_sha256(keys[i].spki, keys[i].spki_len, h);
        if (err != RP_OK)
            return err;
        if (rp_ct_memcmp(h, key_hash, RP_SHA256_LEN) == 0) {
            *index = (int)i;
            return RP_OK;
        }
    }
    return RP_OK;
}

static rp_sig_alg_t sig_alg_of_tlv(uint16_t type)
{
    switch (type) {
    case RP_TLV_ECDSA_SIG: return RP_SIG_ECDSA_P256;
    case RP_TLV_ED25519: return RP_SIG_ED25519;
    default: return RP_SIG_NONE;
    }
}

/* A signature by a trusted key, checked once the whole area is known to be well formed. */
struct pending_sig {
    uint64_t value_off;
    uint16_t len;
    rp_sig_alg_t alg;
    int key;
};

struct sig_state {
    int key; /* KEY_NONE, KEY_UNTRUSTED, or the index of the key named last */
    bool hash_seen;
    size_t nsigs;    /* signature TLVs seen */
    size_t npending; /* of them, by trusted keys */
    struct pending_sig pending[RP_IMAGE_MAX_SIGNATURES];
};

/* One unprotected TLV: checked, and its value read once into buf (RP_PUBKEY_DER_MAX bytes) when
 * it is needed now. Signatures are only recorded. */
static rp_err_t check_unprotected(const rp_image_io_t *io, const rp_image_tlv_t *tlv,
                                  const rp_image_key_t *keys, size_t nkeys,
                                  const uint8_t digest[RP_SHA256_LEN], uint8_t *buf,
                                  struct sig_state *st)
{
    uint8_t key_hash[RP_SHA256_LEN];
    rp_sig_alg_t alg;
    int key;
    rp_err_t err;

    /* CVE-2024-32883: only what MCUboot allows may sit outside the signature. */
    if (!rp_image_tlv_allowed_unprotected(tlv->type))
        return RP_ERR_FORBIDDEN_TLV;
    switch (tlv->type) {
    case RP_TLV_SHA256:
        if (st->hash_seen || !unprot_len_ok(tlv->type, tlv->len))
            return RP_ERR_BAD_TLV;
        st->hash_seen = true;
        err = io_read(io, tlv->value_off, buf, RP_SHA256_LEN);
        if (err != RP_OK)
            return err;
        return rp_ct_memcmp(buf, digest, RP_SHA256_LEN) == 0 ? RP_OK : RP_ERR_HASH_MISMATCH;
    case RP_TLV_KEYHASH:
    case RP_TLV_PUBKEY:
        /* The image only names its key; the key used is always the caller's own copy. */
        if (!unprot_len_ok(tlv->type, tlv->len))
            return RP_ERR_BAD_TLV;
        err = key_tlv_hash(io, tlv, buf, key_hash);
        if (err == RP_OK)
            err = find_key(keys, nkeys, key_hash, &st->key);
        return err;
    case RP_TLV_SIG_PURE:
        return RP_ERR_UNSUPPORTED; /* a signature over the whole image, not its digest */
    default: break;
    }
    if (!is_signature_tlv(tlv->type))
        return RP_OK; /* encryption keys: allowed, meaningless here */

    alg = sig_alg_of_tlv(tlv->type);
    if ((alg == RP_SIG_ECDSA_P256 && (tlv->len == 0 || tlv->len > RP_ECDSA_P256_SIG_MAX)) ||
        (alg == RP_SIG_ED25519 && tlv->len != RP_ED25519_SIG_LEN))
        return RP_ERR_BAD_TLV;
    if (++st->nsigs > RP_IMAGE_MAX_SIGNATURES)
        return RP_ERR_BAD_TLV;
    key = st->key;
    st->key = KEY_NONE; /* a key TLV names the one signature that follows it */
    if (key < 0)
        return RP_OK; /* not by a trusted key: ignored, as MCUboot does */
    if (alg == RP_SIG_NONE)
        return RP_ERR_BAD_SIGNATURE; /* a trusted key, but an algorithm we never accept */
    /* npending <= nsigs <= RP_IMAGE_MAX_SIGNATURES already; the array's own bound, checked where
     * it is written, is what `make prove` (mcu/prove) proves the store against. */
    if (st->npending >= RP_IMAGE_MAX_SIGNATURES)
        return RP_ERR_BAD_TLV;
    st->pending[st->npending++] = (struct pending_sig){tlv->value_off, tlv->len, alg, key};
    return RP_OK;
}

/* Every signature by a trusted key must verify. OUT: signer and algorithm of the first. */
static rp_err_t check_signatures(const rp_image_io_t *io, const rp_image_key_t *keys,
                                 const uint8_t digest[RP_SHA256_LEN], const struct sig_state *st,
                                 rp_image_info_t *r)
{
    /* Zeroed, so no byte handed to the port is ever indeterminate, whatever length it is given. */
    uint8_t sig[RP_ECDSA_P256_SIG_MAX] = {0};
    rp_err_t err;

    _Static_assert(RP_ECDSA_P256_SIG_MAX >= RP_ED25519_SIG_LEN, "sig holds every signature");
    for (size_t i = 0; i < st->npending; i++) {
        const struct pending_sig *p = &st->pending[i];

        err = io_read(io, p->value_off, sig, p->len);
        if (err != RP_OK)
            return err;
        err = rp_sig_verify(p->alg, keys[p->key].spki, keys[p->key].spki_len, digest, sig, p->len);
        if (err == RP_ERR_UNSUPPORTED || err == RP_ERR_CRYPTO)
            return err;
        if (err != RP_OK)
            return RP_ERR_BAD_SIGNATURE; /* fail closed: a trusted key's signature must verify */
        if (i == 0) {
            r->signer = (size_t)p->key;
            r->sig_alg = p->alg;
        }
    }
    return RP_OK;
}

/* Walk the unprotected area once: its info header at prot_end, then each TLV. */
static rp_err_t check_unprotected_area(const rp_image_io_t *io, const rp_image_key_t *keys,
                                       size_t nkeys, rp_image_info_t *r, struct sig_state *st)
{
    /* Zeroed, as check_signatures()'s buffer is: no byte hashed is ever indeterminate. */
    uint8_t buf[RP_PUBKEY_DER_MAX] = {0};
    uint8_t hdr[RP_IMAGE_TLV_HDR_SIZE];
    rp_image_layout_t *l = &r->layout;
    uint64_t off;
    rp_image_tlv_t tlv;
    uint16_t tot;
    rp_err_t err;

    _Static_assert(RP_PUBKEY_DER_MAX >= RP_ECDSA_P256_SIG_MAX &&
                       RP_PUBKEY_DER_MAX >= RP_ED25519_SIG_LEN &&
                       RP_PUBKEY_DER_MAX >= RP_SHA256_LEN,
                   "one buffer holds every unprotected value we read");
    err = read_tlv_info(io, l->prot_end, RP_IMAGE_TLV_INFO_MAGIC, &tot);
    if (err != RP_OK)
        return err;
    l->total_size = l->prot_end + tot;
    if (l->total_size > io->size)
        return RP_ERR_TRUNCATED;
    for (off = l->prot_end + RP_IMAGE_TLV_INFO_SIZE; off < l->total_size;) {
        if (l->total_size - off < RP_IMAGE_TLV_HDR_SIZE)
            return RP_ERR_BAD_TLV;
        err = io_read(io, off, hdr, sizeof(hdr));
        if (err != RP_OK)
            return err;
        tlv.type = (uint16_t)rp_le_get(hdr, 2);
        tlv.len = (uint16_t)rp_le_get(hdr + 2, 2);
        tlv.value_off = off + RP_IMAGE_TLV_HDR_SIZE;
        tlv.protected_area = false;
        if (tlv.len > l->total_size - tlv.value_off)
            return RP_ERR_BAD_TLV;
        err = check_unprotected(io, &tlv, keys, nkeys, r->digest, buf, st);
        if (err != RP_OK)
            return err;
        off = tlv.value_off + tlv.len;
    }
    return RP_OK;
}

rp_err_t rp_image_verify(const rp_image_io_t *io, const rp_image_key_t *keys, size_t nkeys,
                         uint8_t *scratch, size_t scratch_len, rp_image_info_t *info)
{
    struct sig_state st;
    rp_image_info_t r;
    rp_err_t err;

    if (info != NULL)
        memset(info, 0, sizeof(*info));
    if (!io_usable(io) || keys == NULL || nkeys == 0 || nkeys > INT32_MAX || scratch == NULL ||
        scratch_len < RP_IMAGE_SCRATCH_MIN || info == NULL)
        return RP_ERR_INVALID_ARG;
    for (size_t i = 0; i < nkeys; i++)
        if (keys[i].spki == NULL || keys[i].spki_len == 0)
            return RP_ERR_INVALID_ARG;

    memset(&r, 0, sizeof(r));
    memset(&st, 0, sizeof(st));
    st.key = KEY_NONE;
    err = hash_signed_region(io, scratch, scratch_len, &r);
    if (err == RP_OK)
        err = check_unprotected_area(io, keys, nkeys, &r, &st);
    if (err != RP_OK)
        return err;
    if (!st.hash_seen)
        return RP_ERR_NO_HASH;
    if (st.npending == 0)
        return st.nsigs == 0 ? RP_ERR_NO_SIGNATURE : RP_ERR_WRONG_KEY;
    err = check_signatures(io, keys, r.digest, &st, &r);
    if (err != RP_OK)
        return err;
    /* The verdict is decided above; check it once more before anything is released. */
    if (!st.hash_seen || st.npending == 0 || r.sig_alg == RP_SIG_NONE)
        return RP_ERR_BAD_SIGNATURE;
    *info = r;
    return RP_OK;
}

rp_err_t rp_image_identity_read(const rp_image_io_t *io, rp_image_identity_t *id)
{
    uint8_t buf[RP_PUBKEY_DER_MAX];
    struct prot_facts facts = {false, 0, RP_IMAGE_TYPE_NONE};
    rp_image_identity_t r;
    rp_image_tlv_iter_t it;
    rp_image_tlv_t tlv;
    bool found;
    rp_err_t err;

    _Static_assert(RP_PUBKEY_DER_MAX >= PROT_VALUE_MAX, "buf holds every value read");
    if (id != NULL)
        memset(id, 0, sizeof(*id));
    if (!io_usable(io) || id == NULL)
        return RP_ERR_INVALID_ARG;
    memset(&r, 0, sizeof(r));
    err = rp_image_layout(io, &r.layout);
    if (err != RP_OK)
        return err;
    rp_image_tlv_begin(&it, io, &r.layout);
    while ((err = rp_image_tlv_next(&it, &tlv, &found)) == RP_OK && found) {
        if (tlv.protected_area) {
            err = prot_tlv_check(&facts, tlv.type, tlv.len);
            if (err == RP_OK && (tlv.type == RP_TLV_SEC_CNT || tlv.type == RP_TLV_IMAGE_TYPE))
                err = io_read(io, tlv.value_off, buf, tlv.len);
            if (err == RP_OK)
                err = prot_tlv_value(&facts, tlv.type, buf);
        } else if (tlv.type == RP_TLV_SHA256) {
            if (r.has_digest || !unprot_len_ok(tlv.type, tlv.len))
                err = RP_ERR_BAD_TLV;
            else
                err = io_read(io, tlv.value_off, r.digest, RP_SHA256_LEN);
            r.has_digest = err == RP_OK;
        } else if (tlv.type == RP_TLV_KEYHASH || tlv.type == RP_TLV_PUBKEY) {
            if (!unprot_len_ok(tlv.type, tlv.len))
                err = RP_ERR_BAD_TLV;
            else if (!r.has_signer) /* the first names the key of the first signature */
                err = key_tlv_hash(io, &tlv, buf, r.signer);
            r.has_signer = err == RP_OK;
        }
        if (err != RP_OK)
            return err;
    }
    if (err != RP_OK)
        return err;
    r.has_security_counter = facts.has_security_counter;
    r.security_counter = facts.security_counter;
    r.type = facts.type;
    *id = r;
    return RP_OK;
}

/* Parse one decimal component of at most max; advances *p. */
static rp_err_t parse_component(const char **p, const char *end, uint32_t max, uint32_t *out)
{
    uint64_t v = 0;
    const char *s = *p;

    if (s == end || *s < '0' || *s > '9')
        return RP_ERR_BAD_VERSION;
    while (s < end && *s >= '0' && *s <= '9') {
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > max)
            return RP_ERR_BAD_VERSION;
        s++;
    }
    *p = s;
    *out = (uint32_t)v;
    return RP_OK;
}

rp_err_t rp_image_version_parse(const char *s, size_t len, rp_image_version_t *ver)
{
    static const uint32_t max[3] = {UINT8_MAX, UINT8_MAX, UINT16_MAX};
    uint32_t part[3] = {0, 0, 0}, build = 0;
    const char *p = s, *end;
    rp_err_t err;

    if (s == NULL || ver == NULL)
        return RP_ERR_INVALID_ARG;
    end = s + len;
    for (int i = 0; i < 3; i++) {
        err = parse_component(&p, end, max[i], &part[i]);
        if (err != RP_OK)
            return err;
        if (p == end || *p != '.')
            break;
        if (i == 2)
            return RP_ERR_BAD_VERSION;
        p++;
    }
    if (p < end && *p == '+') {
        p++;
        err = parse_component(&p, end, UINT32_MAX, &build);
        if (err != RP_OK)
            return err;
    }
    if (p != end)
        return RP_ERR_BAD_VERSION;
    ver->major = (uint8_t)part[0];
    ver->minor = (uint8_t)part[1];
    ver->revision = (uint16_t)part[2];
    ver->build = build;
    return RP_OK;
}

/* Append the decimal form of v at out[*pos], leaving room for a NUL. */
static rp_err_t append_u32(char *out, size_t out_len, size_t *pos, uint32_t v)
{
    char digits[10];
    size_t n = 0;

    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    if (out_len - *pos <= n)
        return RP_ERR_BUFFER_TOO_SMALL;
    while (n > 0)
        out[(*pos)++] = digits[--n];
    return RP_OK;
}

static rp_err_t append_char(char *out, size_t out_len, size_t *pos, char c)
{
    if (out_len - *pos <= 1)
        return RP_ERR_BUFFER_TOO_SMALL;
    out[(*pos)++] = c;
    return RP_OK;
}

rp_err_t rp_image_version_format(const rp_image_version_t *ver, char *out, size_t out_len)
{
    size_t pos = 0;
    rp_err_t err;

    if (ver == NULL || out == NULL || out_len == 0)
        return RP_ERR_INVALID_ARG;
    err = append_u32(out, out_len, &pos, ver->major);
    if (err == RP_OK)
        err = append_char(out, out_len, &pos, '.');
    if (err == RP_OK)
        err = append_u32(out, out_len, &pos, ver->minor);
    if (err == RP_OK)
        err = append_char(out, out_len, &pos, '.');
    if (err == RP_OK)
        err = append_u32(out, out_len, &pos, ver->revision);
    if (err == RP_OK)
        err = append_char(out, out_len, &pos, '+');
    if (err == RP_OK)
        err = append_u32(out, out_len, &pos, ver->build);
    out[err == RP_OK ? pos : 0] = '\0';
    return err;
}

int rp_image_version_cmp(const rp_image_version_t *a, const rp_image_version_t *b)
{
    if (a->major != b->major)
        return a->major < b->major ? -1 : 1;
    if (a->minor != b->minor)
        return a->minor < b->minor ? -1 : 1;
    if (a->revision != b->revision)
        return a->revision < b->revision ? -1 : 1;
    if (a->build != b->build)
        return a->build < b->build ? -1 : 1;
    return 0;
}

const char *rp_image_type_name(rp_image_type_t type)
{
    switch (type) {
    case RP_IMAGE_TYPE_FIRMWARE: return "firmware";
    case RP_IMAGE_TYPE_APP: return "app";
    case RP_IMAGE_TYPE_SYSTEM: return "system";
    default: return NULL;
    }
}

void rp_tlv_writer_init(rp_tlv_writer_t *w, uint8_t *buf, size_t cap, uint16_t magic)
{
    w->buf = buf;
    w->cap = cap;
    w->magic = magic;
    w->len = RP_IMAGE_TLV_INFO_SIZE;
    w->failed = buf == NULL || cap < RP_IMAGE_TLV_INFO_SIZE;
}

rp_err_t rp_tlv_writer_add(rp_tlv_writer_t *w, uint16_t type, const void *value, size_t len)
{
    size_t need = RP_IMAGE_TLV_HDR_SIZE + len;

    if (w->failed || (len > 0 && value == NULL))
        return RP_ERR_INVALID_ARG;
    if (len > UINT16_MAX || need > w->cap - w->len || w->len + need > UINT16_MAX) {
        w->failed = true;
        return RP_ERR_BUFFER_TOO_SMALL;
    }
    rp_le_put(w->buf + w->len, type, 2);
    rp_le_put(w->buf + w->len + 2, (uint16_t)len, 2);
    if (len > 0)
        memcpy(w->buf + w->len + RP_IMAGE_TLV_HDR_SIZE, value, len);
    w->len += need;
    return RP_OK;
}

rp_err_t rp_tlv_writer_finish(rp_tlv_writer_t *w, size_t *area_len)
{
    if (w->failed || area_len == NULL)
        return RP_ERR_INVALID_ARG;
    rp_le_put(w->buf, w->magic, 2);
    rp_le_put(w->buf + 2, (uint16_t)w->len, 2);
    *area_len = w->len;
    return RP_OK;
}
