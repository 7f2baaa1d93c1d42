/*
 * The MCUboot image format: header codec, the structure walk of both TLV areas, hashing the
 * signed region, and verification against trusted keys. Every size read from an image is checked
 * against the source's size before it is used; all arithmetic on offsets is done in 64 bits so
 * that no 32-bit field can wrap it.
 */
#include <string.h>

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

/* Room for the largest signature accepted (a DER ECDSA P-256 signature). */
#define RP_SIG_MAX RP_ECDSA_P256_SIG_MAX
_Static_assert(RP_SIG_MAX >= RP_ED25519_SIG_LEN, "signature buffer holds every accepted type");

#define ENCRYPTED_FLAGS (RP_IMAGE_F_ENCRYPTED_AES128 | RP_IMAGE_F_ENCRYPTED_AES256)

/* Key lookup results while walking the unprotected area. */
#define KEY_NONE (-1)      /* no key TLV since the last signature */
#define KEY_UNTRUSTED (-2) /* the last key TLV names a key we do not trust */

static uint16_t get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

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
    h.magic = get_le32(raw + OFF_MAGIC);
    h.load_addr = get_le32(raw + OFF_LOAD_ADDR);
    h.hdr_size = get_le16(raw + OFF_HDR_SIZE);
    h.prot_tlv_size = get_le16(raw + OFF_PROT_TLV_SIZE);
    h.img_size = get_le32(raw + OFF_IMG_SIZE);
    h.flags = get_le32(raw + OFF_FLAGS);
    h.version.major = raw[OFF_VER_MAJOR];
    h.version.minor = raw[OFF_VER_MINOR];
    h.version.revision = get_le16(raw + OFF_VER_REVISION);
    h.version.build = get_le32(raw + OFF_VER_BUILD);

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
    put_le32(raw + OFF_MAGIC, hdr->magic);
    put_le32(raw + OFF_LOAD_ADDR, hdr->load_addr);
    put_le16(raw + OFF_HDR_SIZE, hdr->hdr_size);
    put_le16(raw + OFF_PROT_TLV_SIZE, hdr->prot_tlv_size);
    put_le32(raw + OFF_IMG_SIZE, hdr->img_size);
    put_le32(raw + OFF_FLAGS, hdr->flags);
    raw[OFF_VER_MAJOR] = hdr->version.major;
    raw[OFF_VER_MINOR] = hdr->version.minor;
    put_le16(raw + OFF_VER_REVISION, hdr->version.revision);
    put_le32(raw + OFF_VER_BUILD, hdr->version.build);
    put_le32(raw + OFF_PAD, 0);
}

/* Read a TLV info header at off. OUT: *tot, the area's size including the info header. */
static rp_err_t read_tlv_info(const rp_image_io_t *io, uint64_t off, uint16_t magic, uint16_t *tot)
{
    uint8_t info[RP_IMAGE_TLV_INFO_SIZE];
    rp_err_t err = io_read(io, off, info, sizeof(info));

    if (err != RP_OK)
        return err;
    if (get_le16(info) != magic)
        return RP_ERR_BAD_TLV;
    *tot = get_le16(info + 2);
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
    tlv->type = get_le16(hdr);
    tlv->len = get_le16(hdr + 2);
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

/* What the structure pass learns from the TLVs; signatures are checked later. */
struct tlv_summary {
    bool has_security_counter;
    uint32_t security_counter;
    rp_image_type_t type;
};

static rp_err_t read_u32_tlv(const rp_image_io_t *io, const rp_image_tlv_t *tlv, uint32_t *v)
{
    uint8_t b[4];
    rp_err_t err;

    if (tlv->len != sizeof(b))
        return RP_ERR_BAD_TLV;
    err = io_read(io, tlv->value_off, b, sizeof(b));
    if (err == RP_OK)
        *v = get_le32(b);
    return err;
}

static rp_err_t check_protected_tlv(const rp_image_io_t *io, const rp_image_tlv_t *tlv,
                                    struct tlv_summary *s)
{
    uint8_t type;
    rp_err_t err;

    if (is_signing_tlv(tlv->type))
        return RP_ERR_BAD_TLV;
    switch (tlv->type) {
    case RP_TLV_SEC_CNT:
        /* Two counters would leave the reader to pick one: refuse the ambiguity. */
        if (s->has_security_counter)
            return RP_ERR_BAD_TLV;
        err = read_u32_tlv(io, tlv, &s->security_counter);
        if (err != RP_OK)
            return err;
        s->has_security_counter = true;
        return RP_OK;
    case RP_TLV_IMAGE_TYPE:
        if (s->type != RP_IMAGE_TYPE_NONE || tlv->len != 1)
            return RP_ERR_BAD_TLV;
        err = io_read(io, tlv->value_off, &type, 1);
        if (err != RP_OK)
            return err;
        if (type < RP_IMAGE_TYPE_FIRMWARE || type > RP_IMAGE_TYPE_SYSTEM)
            return RP_ERR_BAD_TLV;
        s->type = (rp_image_type_t)type;
        return RP_OK;
    default: return RP_OK; /* other protected TLVs are signed data we do not interpret */
    }
}

static rp_err_t check_unprotected_tlv(const rp_image_tlv_t *tlv, bool *seen_hash, size_t *nsigs)
{
    if (!rp_image_tlv_allowed_unprotected(tlv->type))
        return RP_ERR_FORBIDDEN_TLV;
    switch (tlv->type) {
    case RP_TLV_SHA256:
        if (*seen_hash || tlv->len != RP_SHA256_LEN)
            return RP_ERR_BAD_TLV;
        *seen_hash = true;
        return RP_OK;
    case RP_TLV_KEYHASH: return tlv->len == RP_SHA256_LEN ? RP_OK : RP_ERR_BAD_TLV;
    case RP_TLV_PUBKEY:
        return tlv->len > 0 && tlv->len <= RP_PUBKEY_DER_MAX ? RP_OK : RP_ERR_BAD_TLV;
    case RP_TLV_ECDSA_SIG:
        if (tlv->len == 0 || tlv->len > RP_ECDSA_P256_SIG_MAX)
            return RP_ERR_BAD_TLV;
        break;
    case RP_TLV_ED25519:
        if (tlv->len != RP_ED25519_SIG_LEN)
            return RP_ERR_BAD_TLV;
        break;
    case RP_TLV_SIG_PURE:
        return RP_ERR_UNSUPPORTED; /* a signature over the whole image, not its digest */
    default:
        if (!is_signature_tlv(tlv->type))
            return RP_OK;
        break;
    }
    if (++*nsigs > RP_IMAGE_MAX_SIGNATURES)
        return RP_ERR_BAD_TLV;
    return RP_OK;
}

/* The structure pass: every TLV well formed, nothing unsigned that must be signed. */
static rp_err_t check_tlvs(const rp_image_io_t *io, const rp_image_layout_t *layout,
                           struct tlv_summary *s)
{
    rp_image_tlv_iter_t it;
    rp_image_tlv_t tlv;
    bool found, seen_hash = false;
    size_t nsigs = 0;
    rp_err_t err;

    rp_image_tlv_begin(&it, io, layout);
    for (;;) {
        err = rp_image_tlv_next(&it, &tlv, &found);
        if (err != RP_OK || !found)
            return err;
        if (tlv.protected_area)
            err = check_protected_tlv(io, &tlv, s);
        else
            err = check_unprotected_tlv(&tlv, &seen_hash, &nsigs);
        if (err != RP_OK)
            return err;
    }
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

struct sig_state {
    int key; /* KEY_NONE, KEY_UNTRUSTED, or the index of the key named last */
    bool hash_matched;
    size_t nsigs;    /* signature TLVs seen */
    size_t verified; /* of them, valid signatures by trusted keys */
    size_t signer;
    rp_sig_alg_t alg;
};

static rp_err_t check_one_signature(const rp_image_io_t *io, const rp_image_tlv_t *tlv,
                                    const rp_image_key_t *keys, const uint8_t *digest,
                                    struct sig_state *st)
{
    uint8_t sig[RP_SIG_MAX];
    rp_sig_alg_t alg = sig_alg_of_tlv(tlv->type);
    int key = st->key;
    rp_err_t err;

    st->nsigs++;
    st->key = KEY_NONE; /* a key TLV names the one signature that follows it */
    if (key < 0)
        return RP_OK; /* not by a trusted key: ignored, as MCUboot does */
    if (alg == RP_SIG_NONE)
        return RP_ERR_BAD_SIGNATURE; /* a trusted key, but an algorithm we never accept */
    if (tlv->len > sizeof(sig))
        return RP_ERR_BAD_TLV;
    err = io_read(io, tlv->value_off, sig, tlv->len);
    if (err != RP_OK)
        return err;
    err = rp_sig_verify(alg, keys[key].spki, keys[key].spki_len, digest, sig, tlv->len);
    if (err == RP_ERR_UNSUPPORTED || err == RP_ERR_CRYPTO)
        return err;
    if (err != RP_OK)
        return RP_ERR_BAD_SIGNATURE; /* fail closed: a trusted key's signature must verify */
    st->verified++;
    st->signer = (size_t)key;
    st->alg = alg;
    return RP_OK;
}

static rp_err_t check_signatures(const rp_image_io_t *io, const rp_image_layout_t *layout,
                                 const rp_image_key_t *keys, size_t nkeys, const uint8_t *digest,
                                 struct sig_state *st)
{
    uint8_t buf[RP_PUBKEY_DER_MAX];
    uint8_t key_hash[RP_SHA256_LEN];
    rp_image_tlv_iter_t it;
    rp_image_tlv_t tlv;
    bool found;
    rp_err_t err;

    rp_image_tlv_begin(&it, io, layout);
    for (;;) {
        err = rp_image_tlv_next(&it, &tlv, &found);
        if (err != RP_OK || !found)
            return err;
        if (tlv.protected_area)
            continue;
        switch (tlv.type) {
        case RP_TLV_SHA256:
            err = io_read(io, tlv.value_off, buf, RP_SHA256_LEN);
            if (err != RP_OK)
                return err;
            if (rp_ct_memcmp(buf, digest, RP_SHA256_LEN) != 0)
                return RP_ERR_HASH_MISMATCH;
            st->hash_matched = true;
            break;
        case RP_TLV_KEYHASH:
        case RP_TLV_PUBKEY:
            /* The image only names its key; the key used is always the caller's own copy. */
            err = io_read(io, tlv.value_off, buf, tlv.len);
            if (err != RP_OK)
                return err;
            if (tlv.type == RP_TLV_PUBKEY) {
                err = rp_sha256(buf, tlv.len, key_hash);
                if (err != RP_OK)
                    return err;
            } else {
                memcpy(key_hash, buf, RP_SHA256_LEN);
            }
            err = find_key(keys, nkeys, key_hash, &st->key);
            if (err != RP_OK)
                return err;
            break;
        default:
            if (is_signature_tlv(tlv.type)) {
                err = check_one_signature(io, &tlv, keys, digest, st);
                if (err != RP_OK)
                    return err;
            }
            break;
        }
    }
}

rp_err_t rp_image_verify(const rp_image_io_t *io, const rp_image_key_t *keys, size_t nkeys,
                         uint8_t *scratch, size_t scratch_len, rp_image_info_t *info)
{
    struct tlv_summary summary;
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
    memset(&summary, 0, sizeof(summary));
    memset(&st, 0, sizeof(st));
    st.key = KEY_NONE;

    err = rp_image_layout(io, &r.layout);
    if (err != RP_OK)
        return err;
    if (r.layout.hdr.flags & ENCRYPTED_FLAGS)
        return RP_ERR_UNSUPPORTED;
    /* Cheap structural checks first, so a malformed image is refused before it is hashed. */
    err = check_tlvs(io, &r.layout, &summary);
    if (err != RP_OK)
        return err;
    err = rp_image_hash(io, &r.layout, scratch, scratch_len, r.digest);
    if (err != RP_OK)
        return err;
    err = check_signatures(io, &r.layout, keys, nkeys, r.digest, &st);
    if (err != RP_OK)
        return err;
    if (!st.hash_matched)
        return RP_ERR_NO_HASH;
    if (st.verified == 0)
        return st.nsigs == 0 ? RP_ERR_NO_SIGNATURE : RP_ERR_WRONG_KEY;

    r.has_security_counter = summary.has_security_counter;
    r.security_counter = summary.security_counter;
    r.type = summary.type;
    r.signer = st.signer;
    r.sig_alg = st.alg;
    /* The verdict is decided above; check it once more before anything is released. */
    if (!st.hash_matched || st.verified == 0)
        return RP_ERR_BAD_SIGNATURE;
    *info = r;
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
    put_le16(w->buf + w->len, type);
    put_le16(w->buf + w->len + 2, (uint16_t)len);
    if (len > 0)
        memcpy(w->buf + w->len + RP_IMAGE_TLV_HDR_SIZE, value, len);
    w->len += need;
    return RP_OK;
}

rp_err_t rp_tlv_writer_finish(rp_tlv_writer_t *w, size_t *area_len)
{
    if (w->failed || area_len == NULL)
        return RP_ERR_INVALID_ARG;
    put_le16(w->buf, w->magic);
    put_le16(w->buf + 2, (uint16_t)w->len);
    *area_len = w->len;
    return RP_OK;
}
