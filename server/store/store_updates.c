/*
 * The store's update records: image signing keys, uploads, images, products, device
 * groups and their members, deployments, what each device reported of its update, and the
 * largest security counter each device's root of trust accepts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rampart/bytes.h"
#include "rampart/hex.h"
#include "rampart/update_state.h"
#include "store_internal.h"

/* Bind a text parameter that outlives the statement's use. */

/* Step a query that yields at most one row; RP_ERR_NOT_FOUND when it yields none. The caller
 * reads the row and resets the statement (when RP_OK). */
static rp_err_t one_row(rp_store_t *s, sq_st_t *st, const char *what)
{
    int rc = db_step(st);

    if (rc == DB_ROW)
        return RP_OK;
    db_reset(st);
    return rc == DB_DONE ? RP_ERR_NOT_FOUND : sq_error(s, what);
}

/* The end of a listing loop: reset, and say whether the query ran to its end. */
static rp_err_t list_done(rp_store_t *s, sq_st_t *st, int rc, const char *what)
{
    db_reset(st);
    return rc == DB_DONE ? RP_OK : sq_error(s, what);
}

/* ---- image keys ---- */

static const char SQL_IKEY_INSERT[] =
    "INSERT INTO image_keys (id, tenant_id, name, alg, spki,"
    " keyhash, created, name_key, name_key_written) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
#define IKEY_COLUMNS                                                                               \
    "SELECT id, tenant_id, name, alg, spki, keyhash, created FROM image_keys WHERE tenant_id = ?"
static const char SQL_IKEY_LIST[] = IKEY_COLUMNS " ORDER BY created, id LIMIT :limit";
static const char SQL_IKEY_PAGE[] = IKEY_COLUMNS SQ_PAGE("id", "name");

rp_err_t rp_store_image_key_add(rp_store_t *s, rp_image_key_record_t *k)
{
    sq_st_t *st = sq_stmt(s, SQL_IKEY_INSERT);
    char name[RP_NAME_MAX + 1];
    rp_name_keys_t keys;
    rp_err_t err;

    if (st == NULL)
        return RP_ERR_IO;
    err = sq_name(k->name, name, &keys);
    if (err == RP_OK)
        err = sq_random_id('i', k->id, sizeof(k->id));
    if (err != RP_OK)
        return err;
    snprintf(k->name, sizeof(k->name), "%s", name);
    k->created = (int64_t)time(NULL);
    db_bind_text(st, 1, k->id);
    db_bind_text(st, 2, k->tenant_id);
    db_bind_text(st, 3, k->name);
    db_bind_text(st, 4, k->alg);
    db_bind_blob(st, 5, k->spki, (int)k->spki_len);
    db_bind_text(st, 6, k->keyhash);
    db_bind_int64(st, 7, k->created);
    db_bind_text(st, 8, keys.folded);
    db_bind_text(st, 9, keys.as_written);
    return sq_step_done(s, st, NULL);
}

/* The list's statement: its page's when page asks for one, else the whole list's (at most
 * page->whole_max rows: LIMIT :limit), bound. */
static sq_st_t *list_stmt(rp_store_t *s, const rp_page_t *page, const char *whole,
                          const char *paged)
{
    sq_st_t *st = sq_stmt(s, page != NULL && page->paged ? paged : whole);

    if (st != NULL)
        sq_bind_page(st, page);
    return st;
}

rp_err_t rp_store_image_key_list(rp_store_t *s, const char *tenant_id, const rp_page_t *page,
                                 rp_image_key_fn fn, void *ctx)
{
    sq_st_t *st = list_stmt(s, page, SQL_IKEY_LIST, SQL_IKEY_PAGE);
    rp_image_key_record_t k;
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    while ((rc = db_step(st)) == DB_ROW) {
        int n = db_column_bytes(st, 4);
        memset(&k, 0, sizeof(k));
        sq_text_col(st, 0, k.id, sizeof(k.id));
        sq_text_col(st, 1, k.tenant_id, sizeof(k.tenant_id));
        sq_text_col(st, 2, k.name, sizeof(k.name));
        sq_text_col(st, 3, k.alg, sizeof(k.alg));
        if (n <= 0 || (size_t)n > sizeof(k.spki))
            continue; /* cannot be stored so: the API checks keys before adding them */
        memcpy(k.spki, db_column_blob(st, 4), (size_t)n);
        k.spki_len = (size_t)n;
        sq_text_col(st, 5, k.keyhash, sizeof(k.keyhash));
        k.created = db_column_int64(st, 6);
        fn(ctx, &k);
    }
    return list_done(s, st, rc, "image keys");
}

/* ---- uploads ---- */

static const char SQL_UPLOAD_INSERT[] =
    "INSERT INTO uploads (id, tenant_id, size, created) VALUES (?, ?, ?, ?)";
static const char SQL_UPLOAD_GET[] = "SELECT id, tenant_id, size, created, image_id FROM uploads"
                                     " WHERE id = ? AND tenant_id = ?";
static const char SQL_UPLOAD_DELETE[] = "DELETE FROM uploads WHERE id = ?";
/* Open: not yet become an image (a row that did is kept a day for retries, counting for none). */
static const char SQL_UPLOAD_OPEN[] = "SELECT count(*), coalesce(sum(size), 0) FROM uploads"
                                      " WHERE tenant_id = ? AND image_id IS NULL";
/* Only an open upload takes chunks: one that became an image is done with. */
static const char SQL_UPLOAD_TOUCH[] =
    "UPDATE uploads SET created = ? WHERE id = ? AND tenant_id = ? AND image_id IS NULL";
static const char SQL_UPLOAD_DROP_STALE[] = "DELETE FROM uploads WHERE id = ? AND created < ?";
static const char SQL_UPLOAD_BECAME[] = "UPDATE uploads SET image_id = ? WHERE id = ?";
static const char SQL_UPLOAD_STALE[] = "SELECT id, tenant_id, size, created, image_id FROM uploads"
                                       " WHERE created < ? ORDER BY created LIMIT ?";

static void upload_row(sq_st_t *st, rp_upload_t *u)
{
    memset(u, 0, sizeof(*u));
    sq_text_col(st, 0, u->id, sizeof(u->id));
    sq_text_col(st, 1, u->tenant_id, sizeof(u->tenant_id));
    u->size = (uint64_t)db_column_int64(st, 2);
    u->active = db_column_int64(st, 3);
    sq_text_col(st, 4, u->image_id, sizeof(u->image_id)); /* (NULL: "") */
}

/* The tenant's open uploads: how many, and their announced bytes. */
static rp_err_t uploads_open(rp_store_t *s, const char *tenant_id, uint64_t *n, uint64_t *bytes)
{
    sq_st_t *st = sq_stmt(s, SQL_UPLOAD_OPEN);
    rp_err_t err;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    err = one_row(s, st, "uploads");
    if (err == RP_OK) {
        *n = (uint64_t)db_column_int64(st, 0);
        *bytes = (uint64_t)db_column_int64(st, 1);
        db_reset(st);
    }
    return err;
}

rp_err_t rp_store_upload_create(rp_store_t *s, const char *tenant_id, uint64_t size,
                                unsigned max_open, uint64_t max_bytes, rp_upload_t *out)
{
    uint64_t n = 0, bytes = 0;
    sq_st_t *st;
    rp_err_t err;

    memset(out, 0, sizeof(*out));
    if ((err = sq_random_id('u', out->id, sizeof(out->id))) != RP_OK)
        return err;
    snprintf(out->tenant_id, sizeof(out->tenant_id), "%s", tenant_id);
    out->size = size;
    out->active = (int64_t)time(NULL);
    if ((err = sq_begin(s)) != RP_OK)
        return err;
    err = uploads_open(s, tenant_id, &n, &bytes);
    if (err == RP_OK && n >= max_open)
        err = RP_ERR_DENIED;
    else if (err == RP_OK && (size > max_bytes || bytes > max_bytes - size))
        err = RP_ERR_TOO_LARGE;
    if (err == RP_OK)
        err = (st = sq_stmt(s, SQL_UPLOAD_INSERT)) != NULL ? RP_OK : RP_ERR_IO;
    if (err == RP_OK) {
        db_bind_text(st, 1, out->id);
        db_bind_text(st, 2, out->tenant_id);
        db_bind_int64(st, 3, (int64_t)size);
        db_bind_int64(st, 4, out->active);
        err = sq_step_done(s, st, NULL);
    }
    return sq_end(s, err);
}

rp_err_t rp_store_upload_touch(rp_store_t *s, const char *tenant_id, const char *id, int64_t now)
{
    sq_st_t *st = sq_stmt(s, SQL_UPLOAD_TOUCH);
    int changes = 0;
    rp_err_t err;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_int64(st, 1, now);
    db_bind_text(st, 2, id);
    db_bind_text(st, 3, tenant_id);
    err = sq_step_done(s, st, &changes);
    return err == RP_OK && changes == 0 ? RP_ERR_NOT_FOUND : err;
}

rp_err_t rp_store_upload_drop_stale(rp_store_t *s, const char *id, int64_t before)
{
    sq_st_t *st = sq_stmt(s, SQL_UPLOAD_DROP_STALE);
    int changes = 0;
    rp_err_t err;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, id);
    db_bind_int64(st, 2, before);
    err = sq_step_done(s, st, &changes);
    return err == RP_OK && changes == 0 ? RP_ERR_NOT_FOUND : err;
}

rp_err_t rp_store_upload_get(rp_store_t *s, const char *tenant_id, const char *id, rp_upload_t *out)
{
    sq_st_t *st = sq_stmt(s, SQL_UPLOAD_GET);
    rp_err_t err;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, id);
    db_bind_text(st, 2, tenant_id);
    err = one_row(s, st, "upload");
    if (err == RP_OK) {
        upload_row(st, out);
        db_reset(st);
    }
    return err;
}

rp_err_t rp_store_upload_delete(rp_store_t *s, const char *id)
{
    sq_st_t *st = sq_stmt(s, SQL_UPLOAD_DELETE);

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, id);
    return sq_step_done(s, st, NULL);
}

rp_err_t rp_store_upload_became(rp_store_t *s, const char *id, const char *image_id)
{
    sq_st_t *st = sq_stmt(s, SQL_UPLOAD_BECAME);
    int changes = 0;
    rp_err_t err;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, image_id);
    db_bind_text(st, 2, id);
    err = sq_step_done(s, st, &changes);
    return err == RP_OK && changes == 0 ? RP_ERR_NOT_FOUND : err;
}

rp_err_t rp_store_upload_stale(rp_store_t *s, int64_t before, int max, rp_upload_fn fn, void *ctx)
{
    sq_st_t *st = sq_stmt(s, SQL_UPLOAD_STALE);
    rp_upload_t u;
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_int64(st, 1, before);
    db_bind_int(st, 2, max);
    while ((rc = db_step(st)) == DB_ROW) {
        upload_row(st, &u);
        fn(ctx, &u);
    }
    return list_done(s, st, rc, "uploads");
}

/* ---- deltas (migration 19) ---- */

static const char SQL_DELTA_GET[] =
    "SELECT sha256, size, lease_until FROM deltas WHERE from_image = ? AND to_image = ?";
static const char SQL_DELTA_NEW[] = "INSERT INTO deltas (from_image, to_image, sha256, size,"
                                    " lease_until, holder) VALUES (?, ?, NULL, NULL, ?, ?)";
static const char SQL_DELTA_TAKE[] = "UPDATE deltas SET lease_until = ?, holder = ?"
                                     " WHERE from_image = ? AND to_image = ? AND sha256 IS NULL";
/* What a holder does, only while it holds the lease: its own token, the delta not made. */
#define DELTA_HELD " WHERE from_image = ? AND to_image = ? AND sha256 IS NULL AND holder = ?"
static const char SQL_DELTA_LEASE[] = "UPDATE deltas SET lease_until = ?" DELTA_HELD;
static const char SQL_DELTA_MADE[] =
    "UPDATE deltas SET sha256 = ?, size = ?, lease_until = 0" DELTA_HELD;
static const char SQL_DELTA_DROP[] = "DELETE FROM deltas" DELTA_HELD;
static const char SQL_DELTA_FORGET[] =
    "DELETE FROM deltas WHERE from_image = ? AND to_image = ? AND sha256 = ?";

/* The row: made (its hash and size) or not (its lease). RP_ERR_NOT_FOUND. */
static rp_err_t delta_row(rp_store_t *s, const char *from, const char *to, char sha256[65],
                          uint64_t *size, int64_t *lease)
{
    sq_st_t *st = sq_stmt(s, SQL_DELTA_GET);
    rp_err_t err;
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, from);
    db_bind_text(st, 2, to);
    rc = db_step(st);
    if (rc == DB_ROW) {
        sq_text_col(st, 0, sha256, 65);
        *size = (uint64_t)db_column_int64(st, 1);
        *lease = db_column_int64(st, 2);
        err = RP_OK;
    } else {
        err = rc == DB_DONE ? RP_ERR_NOT_FOUND : sq_error(s, "delta");
    }
    db_reset(st);
    return err;
}

rp_err_t rp_store_delta_get(rp_store_t *s, const char *from, const char *to, char sha256[65],
                            uint64_t *size)
{
    int64_t lease;
    rp_err_t err = delta_row(s, from, to, sha256, size, &lease);

    return err == RP_OK && sha256[0] == '\0' ? RP_ERR_NOT_FOUND : err;
}

rp_err_t rp_store_delta_claim(rp_store_t *s, const char *from, const char *to, int lease_seconds,
                              char holder[RP_DELTA_HOLDER_SIZE])
{
    char sha[65];
    uint64_t size;
    int64_t lease, now = 0;
    sq_st_t *st = NULL;
    rp_err_t err = sq_random_id('h', holder, RP_DELTA_HOLDER_SIZE);

    if (err != RP_OK || (err = sq_begin(s)) != RP_OK)
        return err;
    /* the lease's times are the database's: replicas' clocks may disagree */
    err = sq_db_now(s, &now);
    if (err == RP_OK)
        err = delta_row(s, from, to, sha, &size, &lease);
    if (err == RP_ERR_NOT_FOUND) {
        err = (st = sq_stmt(s, SQL_DELTA_NEW)) != NULL ? RP_OK : RP_ERR_IO;
        if (err == RP_OK) {
            db_bind_text(st, 1, from);
            db_bind_text(st, 2, to);
            db_bind_int64(st, 3, now + lease_seconds);
            db_bind_text(st, 4, holder);
        }
    } else if (err == RP_OK && (sha[0] != '\0' || lease >= now)) {
        err = RP_ERR_EXISTS;   /* made, or being made */
    } else if (err == RP_OK) { /* an expired lease taken over: its holder's is no longer */
        err = (st = sq_stmt(s, SQL_DELTA_TAKE)) != NULL ? RP_OK : RP_ERR_IO;
        if (err == RP_OK) {
            db_bind_int64(st, 1, now + lease_seconds);
            db_bind_text(st, 2, holder);
            db_bind_text(st, 3, from);
            db_bind_text(st, 4, to);
        }
    }
    if (err == RP_OK)
        err = sq_step_done(s, st, NULL);
    return sq_end(s, err);
}

/* A statement on a lease that holder holds (DELTA_HELD's four parameters at first): none changed
 * is RP_ERR_NOT_FOUND. */
static rp_err_t delta_held(rp_store_t *s, sq_st_t *st, int first, const char *from, const char *to,
                           const char *holder)
{
    int changes = 0;
    rp_err_t err;

    db_bind_text(st, first, from);
    db_bind_text(st, first + 1, to);
    db_bind_text(st, first + 2, holder);
    err = sq_step_done(s, st, &changes);
    return err == RP_OK && changes == 0 ? RP_ERR_NOT_FOUND : err;
}

rp_err_t rp_store_delta_renew(rp_store_t *s, const char *from, const char *to, int lease_seconds,
                              const char *holder)
{
    int64_t now = 0;
    rp_err_t err = sq_db_now(s, &now);
    sq_st_t *st;

    if (err != RP_OK)
        return err;
    if ((st = sq_stmt(s, SQL_DELTA_LEASE)) == NULL)
        return RP_ERR_IO;
    db_bind_int64(st, 1, now + lease_seconds);
    return delta_held(s, st, 2, from, to, holder);
}

rp_err_t rp_store_delta_made(rp_store_t *s, const char *from, const char *to, const char *holder,
                             const char *sha256, uint64_t size)
{
    sq_st_t *st = sq_stmt(s, SQL_DELTA_MADE);

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, sha256);
    db_bind_int64(st, 2, (int64_t)size);
    return delta_held(s, st, 3, from, to, holder);
}

rp_err_t rp_store_delta_release(rp_store_t *s, const char *from, const char *to, const char *holder)
{
    sq_st_t *st = sq_stmt(s, SQL_DELTA_DROP);

    return st != NULL ? delta_held(s, st, 1, from, to, holder) : RP_ERR_IO;
}

rp_err_t rp_store_delta_forget(rp_store_t *s, const char *from, const char *to, const char *sha256)
{
    sq_st_t *st = sq_stmt(s, SQL_DELTA_FORGET);
    int changes = 0;
    rp_err_t err;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, from);
    db_bind_text(st, 2, to);
    db_bind_text(st, 3, sha256);
    err = sq_step_done(s, st, &changes);
    return err == RP_OK && changes == 0 ? RP_ERR_NOT_FOUND : err;
}

/* ---- images ---- */

#define IMAGE_COLUMNS                                                                              \
    "SELECT id, tenant_id, component, version, security_counter, type, size, image_hash,"          \
    " key_id, uploaded FROM images"
static const char SQL_IMAGE_INSERT[] =
    "INSERT INTO images (id, tenant_id, component, version, security_counter, type, size,"
    " image_hash, key_id, uploaded) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char SQL_IMAGE_GET[] = IMAGE_COLUMNS " WHERE tenant_id = ? AND id = ?";
static const char SQL_IMAGE_LIST[] =
    IMAGE_COLUMNS " WHERE tenant_id = ? ORDER BY component, uploaded, id LIMIT :limit";
static const char SQL_IMAGE_PAGE[] =
    IMAGE_COLUMNS " WHERE tenant_id = ?" SQ_PAGE("id", "component");

static void image_row(sq_st_t *st, rp_image_record_t *m)
{
    memset(m, 0, sizeof(*m));
    sq_text_col(st, 0, m->id, sizeof(m->id));
    sq_text_col(st, 1, m->tenant_id, sizeof(m->tenant_id));
    sq_text_col(st, 2, m->component, sizeof(m->component));
    sq_text_col(st, 3, m->version, sizeof(m->version));
    m->has_security_counter = !db_column_null(st, 4);
    m->security_counter = (uint32_t)db_column_int64(st, 4);
    sq_text_col(st, 5, m->type, sizeof(m->type));
    /* Images without a type TLV stored before it was "" were stored as "(null)": the same. */
    if (strcmp(m->type, "(null)") == 0)
        m->type[0] = '\0';
    m->size = (uint64_t)db_column_int64(st, 6);
    sq_text_col(st, 7, m->image_hash, sizeof(m->image_hash));
    sq_text_col(st, 8, m->key_id, sizeof(m->key_id));
    m->uploaded = db_column_int64(st, 9);
}

rp_err_t rp_store_image_add(rp_store_t *s, const rp_image_record_t *m)
{
    sq_st_t *st = sq_stmt(s, SQL_IMAGE_INSERT);

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, m->id);
    db_bind_text(st, 2, m->tenant_id);
    db_bind_text(st, 3, m->component);
    db_bind_text(st, 4, m->version);
    if (m->has_security_counter)
        db_bind_int64(st, 5, m->security_counter);
    else
        db_bind_null(st, 5);
    db_bind_text(st, 6, m->type);
    db_bind_int64(st, 7, (int64_t)m->size);
    db_bind_text(st, 8, m->image_hash);
    db_bind_text(st, 9, m->key_id);
    db_bind_int64(st, 10, m->uploaded);
    return sq_step_done(s, st, NULL);
}

rp_err_t rp_store_image_get(rp_store_t *s, const char *tenant_id, const char *id,
                            rp_image_record_t *out)
{
    sq_st_t *st = sq_stmt(s, SQL_IMAGE_GET);
    rp_err_t err;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    db_bind_text(st, 2, id);
    err = one_row(s, st, "image");
    if (err == RP_OK) {
        image_row(st, out);
        db_reset(st);
    }
    return err;
}

static const char SQL_IMAGE_BY_HASH[] =
    IMAGE_COLUMNS " WHERE tenant_id = ? AND image_hash = ? ORDER BY uploaded LIMIT 1";

rp_err_t rp_store_image_by_hash(rp_store_t *s, const char *tenant_id, const char *image_hash,
                                rp_image_record_t *out)
{
    sq_st_t *st = sq_stmt(s, SQL_IMAGE_BY_HASH);
    rp_err_t err;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    db_bind_text(st, 2, image_hash);
    err = one_row(s, st, "image");
    if (err == RP_OK) {
        image_row(st, out);
        db_reset(st);
    }
    return err;
}

rp_err_t rp_store_image_list(rp_store_t *s, const char *tenant_id, const rp_page_t *page,
                             rp_image_fn fn, void *ctx)
{
    sq_st_t *st = list_stmt(s, page, SQL_IMAGE_LIST, SQL_IMAGE_PAGE);
    rp_image_record_t m;
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    while ((rc = db_step(st)) == DB_ROW) {
        image_row(st, &m);
        fn(ctx, &m);
    }
    return list_done(s, st, rc, "images");
}

/* ---- products and device groups ---- */

/* What a name given to find something is looked up as besides its bytes (names.h); the bytes
 * again when it has no such form (not UTF-8, or too long for any name: an ID, or nothing). */
static const char *lookup_form(const char *given, char *form, size_t cap)
{
    return rp_name_lookup_form(given, form, cap) == RP_OK ? form : given;
}

static const char SQL_PRODUCT_INSERT[] =
    "INSERT INTO products (id, tenant_id, name, created, name_key, name_key_written)"
    " VALUES (?, ?, ?, ?, ?, ?)";
/* (?2 as given, ?3 its lookup form, names.h: a name kept before the rule, not in NFC, is found
 * by its bytes; an ID before a name, the name as given before another) */
static const char SQL_PRODUCT_FIND[] =
    "SELECT id, tenant_id, name, created FROM products WHERE tenant_id = ?1"
    " AND (id = ?2 OR name = ?2 OR name = ?3) ORDER BY id = ?2 DESC, name = ?2 DESC LIMIT 1";
static const char SQL_PRODUCT_LIST[] =
    "SELECT id, tenant_id, name, created FROM products WHERE tenant_id = ? ORDER BY name"
    " LIMIT :limit";
static const char SQL_PRODUCT_PAGE[] = "SELECT id, tenant_id, name, created FROM products"
                                       " WHERE tenant_id = ?" SQ_PAGE("id", "name");
static const char SQL_GROUP_INSERT[] =
    "INSERT INTO device_groups (id, tenant_id, product_id, name, allow_unknown_images, created,"
    " name_key, name_key_written) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
#define GROUP_COLUMNS                                                                              \
    "SELECT g.id, g.tenant_id, g.product_id, g.name, g.allow_unknown_images, g.created,"           \
    " g.crash_capture"
static const char SQL_GROUP_FIND[] = /* (as SQL_PRODUCT_FIND) */
    GROUP_COLUMNS " FROM device_groups g WHERE g.product_id = ?1"
                  " AND (g.id = ?2 OR g.name = ?2 OR g.name = ?3)"
                  " ORDER BY g.id = ?2 DESC, g.name = ?2 DESC LIMIT 1";
static const char SQL_GROUP_GET[] =
    GROUP_COLUMNS " FROM device_groups g WHERE g.id = ? AND g.tenant_id = ?";
#define GROUP_LIST GROUP_COLUMNS ", g.members FROM device_groups g WHERE g.product_id = ?"
/* In the order they were made: SQLite's rowid; PostgreSQL's rows have none (its ctid moves). */
static const char *const SQL_GROUP_LIST[SQ_ENGINES] = {
    [SQ_SQLITE] = GROUP_LIST " ORDER BY g.rowid LIMIT :limit",
    [SQ_PG] = GROUP_LIST " ORDER BY g.created, g.id LIMIT :limit",
};
static const char SQL_GROUP_PAGE[] = GROUP_LIST SQ_PAGE("g.id", "g.name");
static const char SQL_DEVICE_GROUP[] =
    GROUP_COLUMNS " FROM group_members m JOIN device_groups g ON g.id = m.group_id"
                  " WHERE m.device_id = ?";
static const char SQL_MEMBER_SET[] =
    "INSERT INTO group_members (device_id, group_id, assigned)"
    " SELECT id, ?, ? FROM devices WHERE id = ? AND tenant_id = ?"
    " ON CONFLICT(device_id) DO UPDATE SET group_id = excluded.group_id,"
    " assigned = excluded.assigned";
static const char SQL_MEMBER_GROUP[] = "SELECT group_id FROM group_members WHERE device_id = ?";
static const char SQL_GROUP_MEMBERS_ADD[] =
    "UPDATE device_groups SET members = members + ?2 WHERE id = ?1";
static const char SQL_GROUP_CRASH_CAPTURE[] =
    "UPDATE device_groups SET crash_capture = ? WHERE id = ?";
static const char SQL_DEVICE_CRASH_CAPTURE[] =
    "SELECT g.crash_capture FROM group_members m JOIN device_groups g ON g.id = m.group_id"
    " WHERE m.device_id = ?";
static const char SQL_MEMBERS[] =
    "SELECT device_id FROM group_members WHERE group_id = ? ORDER BY device_id LIMIT :limit";
static const char SQL_MEMBERS_PAGE[] =
    "SELECT device_id FROM group_members WHERE group_id = ?" SQ_PAGE_ON("device_id");

static void product_row(sq_st_t *st, rp_product_t *p)
{
    memset(p, 0, sizeof(*p));
    sq_text_col(st, 0, p->id, sizeof(p->id));
    sq_text_col(st, 1, p->tenant_id, sizeof(p->tenant_id));
    sq_text_col(st, 2, p->name, sizeof(p->name));
    p->created = db_column_int64(st, 3);
}

static void group_row(sq_st_t *st, rp_group_t *g)
{
    memset(g, 0, sizeof(*g));
    sq_text_col(st, 0, g->id, sizeof(g->id));
    sq_text_col(st, 1, g->tenant_id, sizeof(g->tenant_id));
    sq_text_col(st, 2, g->product_id, sizeof(g->product_id));
    sq_text_col(st, 3, g->name, sizeof(g->name));
    g->allow_unknown_images = db_column_int(st, 4) != 0;
    g->created = db_column_int64(st, 5);
    g->crash_capture = db_column_int(st, 6) != 0;
}

static rp_err_t group_insert(rp_store_t *s, const rp_product_t *p, const char *name,
                             bool allow_unknown, rp_group_t *out)
{
    sq_st_t *st = sq_stmt(s, SQL_GROUP_INSERT);
    rp_name_keys_t keys;
    rp_err_t err;

    if (st == NULL)
        return RP_ERR_IO;
    memset(out, 0, sizeof(*out));
    err = sq_name(name, out->name, &keys);
    if (err == RP_OK)
        err = sq_random_id('g', out->id, sizeof(out->id));
    if (err != RP_OK)
        return err;
    snprintf(out->tenant_id, sizeof(out->tenant_id), "%s", p->tenant_id);
    snprintf(out->product_id, sizeof(out->product_id), "%s", p->id);
    out->allow_unknown_images = allow_unknown;
    out->created = (int64_t)time(NULL);
    out->crash_capture = true; /* the column's default */
    db_bind_text(st, 1, out->id);
    db_bind_text(st, 2, out->tenant_id);
    db_bind_text(st, 3, out->product_id);
    db_bind_text(st, 4, out->name);
    db_bind_int(st, 5, allow_unknown ? 1 : 0);
    db_bind_int64(st, 6, out->created);
    db_bind_text(st, 7, keys.folded);
    db_bind_text(st, 8, keys.as_written);
    return sq_step_done(s, st, NULL);
}

rp_err_t rp_store_product_create(rp_store_t *s, const char *tenant_id, const char *name,
                                 rp_product_t *out)
{
    static const struct {
        const char *name;
        bool allow_unknown;
    } defaults[] = {
        {"Development", true },
        {"Field Test",  false},
        {"Production",  false},
    };
    sq_st_t *st;
    rp_name_keys_t keys;
    rp_group_t g;
    rp_err_t err;

    memset(out, 0, sizeof(*out));
    err = sq_name(name, out->name, &keys);
    if (err == RP_OK)
        err = sq_random_id('p', out->id, sizeof(out->id));
    if (err != RP_OK)
        return err;
    snprintf(out->tenant_id, sizeof(out->tenant_id), "%s", tenant_id);
    out->created = (int64_t)time(NULL);
    err = sq_begin(s);
    if (err != RP_OK)
        return err;
    st = sq_stmt(s, SQL_PRODUCT_INSERT);
    err = st != NULL ? RP_OK : RP_ERR_IO;
    if (err == RP_OK) {
        db_bind_text(st, 1, out->id);
        db_bind_text(st, 2, out->tenant_id);
        db_bind_text(st, 3, out->name);
        db_bind_int64(st, 4, out->created);
        db_bind_text(st, 5, keys.folded);
        db_bind_text(st, 6, keys.as_written);
        err = sq_step_done(s, st, NULL);
    }
    for (size_t i = 0; err == RP_OK && i < sizeof(defaults) / sizeof(defaults[0]); i++)
        err = group_insert(s, out, defaults[i].name, defaults[i].allow_unknown, &g);
    return sq_end(s, err);
}

rp_err_t rp_store_product_find(rp_store_t *s, const char *tenant_id, const char *id_or_name,
                               rp_product_t *out)
{
    sq_st_t *st = sq_stmt(s, SQL_PRODUCT_FIND);
    char form[RP_NAME_MAX + 1];
    rp_err_t err;

    if (!sq_text_storable(s, id_or_name))
        return RP_ERR_NOT_FOUND;
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    db_bind_text(st, 2, id_or_name);
    /* (copied: the buffer is gone when the cached statement is next used) */
    db_bind_text(st, 3, lookup_form(id_or_name, form, sizeof(form)));
    err = one_row(s, st, "product");
    if (err == RP_OK) {
        product_row(st, out);
        db_reset(st);
    }
    return err;
}

rp_err_t rp_store_product_list(rp_store_t *s, const char *tenant_id, const rp_page_t *page,
                               rp_product_fn fn, void *ctx)
{
    sq_st_t *st = list_stmt(s, page, SQL_PRODUCT_LIST, SQL_PRODUCT_PAGE);
    rp_product_t p;
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    while ((rc = db_step(st)) == DB_ROW) {
        product_row(st, &p);
        fn(ctx, &p);
    }
    return list_done(s, st, rc, "products");
}

rp_err_t rp_store_group_create(rp_store_t *s, const rp_product_t *product, const char *name,
                               bool allow_unknown_images, rp_group_t *out)
{
    return group_insert(s, product, name, allow_unknown_images, out);
}

rp_err_t rp_store_group_set_crash_capture(rp_store_t *s, rp_group_t *g, bool on)
{
    sq_st_t *st = sq_stmt(s, SQL_GROUP_CRASH_CAPTURE);
    int changes = 0;
    rp_err_t err;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_int(st, 1, on ? 1 : 0);
    db_bind_text(st, 2, g->id);
    err = sq_step_done(s, st, &changes);
    if (err == RP_OK && changes == 0)
        return RP_ERR_NOT_FOUND;
    if (err == RP_OK)
        g->crash_capture = on;
    return err;
}

rp_err_t rp_store_device_crash_capture(rp_store_t *s, const char *device_id, bool *on)
{
    sq_st_t *st = sq_stmt(s, SQL_DEVICE_CRASH_CAPTURE);
    rp_err_t err;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, device_id);
    err = one_row(s, st, "device group");
    *on = err != RP_OK || db_column_int(st, 0) != 0;
    if (err == RP_OK)
        db_reset(st);
    return err == RP_ERR_NOT_FOUND ? RP_OK : err;
}

rp_err_t rp_store_group_find(rp_store_t *s, const rp_product_t *product, const char *id_or_name,
                             rp_group_t *out)
{
    sq_st_t *st = sq_stmt(s, SQL_GROUP_FIND);
    char form[RP_NAME_MAX + 1];
    rp_err_t err;

    if (!sq_text_storable(s, id_or_name))
        return RP_ERR_NOT_FOUND;
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, product->id);
    db_bind_text(st, 2, id_or_name);
    /* (copied: the buffer is gone when the cached statement is next used) */
    db_bind_text(st, 3, lookup_form(id_or_name, form, sizeof(form)));
    err = one_row(s, st, "device group");
    if (err == RP_OK) {
        group_row(st, out);
        db_reset(st);
    }
    return err;
}

rp_err_t rp_store_group_get(rp_store_t *s, const char *tenant_id, const char *id, rp_group_t *out)
{
    sq_st_t *st = sq_stmt(s, SQL_GROUP_GET);
    rp_err_t err;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, id);
    db_bind_text(st, 2, tenant_id);
    err = one_row(s, st, "device group");
    if (err == RP_OK) {
        group_row(st, out);
        db_reset(st);
    }
    return err;
}

rp_err_t rp_store_group_list(rp_store_t *s, const rp_product_t *product, const rp_page_t *page,
                             rp_group_fn fn, void *ctx)
{
    sq_st_t *st = list_stmt(s, page, SQL_GROUP_LIST[sq_engine(s)], SQL_GROUP_PAGE);
    rp_group_t g;
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, product->id);
    while ((rc = db_step(st)) == DB_ROW) {
        group_row(st, &g);
        fn(ctx, &g, db_column_int64(st, 7));
    }
    return list_done(s, st, rc, "device groups");
}

static rp_err_t deploy_member_moved(rp_store_t *s, const char *device_id, const char *from,
                                    const char *to);

/* The group's member count moved by delta. */
static rp_err_t group_members_add(rp_store_t *s, const char *group_id, int delta)
{
    sq_st_t *st = sq_stmt(s, SQL_GROUP_MEMBERS_ADD);

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, group_id);
    db_bind_int(st, 2, delta);
    return sq_step_done(s, st, NULL);
}

/* With the device's membership, in its transaction: the groups' member counts, the deployments'
 * counters of both groups (deploy_member_moved) and, to another product, the versions' counters
 * (sq_versions_move). */
rp_err_t rp_store_device_assign(rp_store_t *s, const rp_group_t *group, const char *device_id,
                                int64_t now)
{
    char from[RP_ID_SIZE] = "";
    sq_device_versions_t before, after;
    sq_st_t *st;
    int changes = 0, rc;
    rp_err_t err = sq_begin(s);

    if (err != RP_OK)
        return err;
    if ((st = sq_stmt(s, SQL_MEMBER_GROUP)) == NULL)
        return sq_end(s, RP_ERR_IO);
    db_bind_text(st, 1, device_id);
    if ((rc = db_step(st)) == DB_ROW)
        sq_text_col(st, 0, from, sizeof(from));
    err = list_done(s, st, rc == DB_ROW ? DB_DONE : rc, "device group");
    if (err == RP_OK && strcmp(from, group->id) != 0)
        err = sq_device_versions(s, device_id, &before);
    st = err == RP_OK ? sq_stmt(s, SQL_MEMBER_SET) : NULL;
    if (err == RP_OK && st == NULL)
        err = RP_ERR_IO;
    if (err == RP_OK) {
        db_bind_text(st, 1, group->id);
        db_bind_int64(st, 2, now);
        db_bind_text(st, 3, device_id);
        db_bind_text(st, 4, group->tenant_id);
        err = sq_step_done(s, st, &changes);
    }
    if (err == RP_OK && changes == 0)
        err = RP_ERR_NOT_FOUND;
    if (err == RP_OK && strcmp(from, group->id) != 0) {
        if (from[0] != '\0')
            err = group_members_add(s, from, -1);
        if (err == RP_OK)
            err = group_members_add(s, group->id, 1);
        if (err == RP_OK)
            err = deploy_member_moved(s, device_id, from, group->id);
        if (err == RP_OK)
            err = sq_device_versions(s, device_id, &after);
        if (err == RP_OK)
            err = sq_versions_move(s, &before, &after);
    }
    return sq_end(s, err);
}

rp_err_t rp_store_device_group(rp_store_t *s, const char *device_id, rp_group_t *out)
{
    sq_st_t *st = sq_stmt(s, SQL_DEVICE_GROUP);
    rp_err_t err;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, device_id);
    err = one_row(s, st, "device group");
    if (err == RP_OK) {
        group_row(st, out);
        db_reset(st);
    }
    return err;
}

rp_err_t rp_store_group_members(rp_store_t *s, const char *group_id, const rp_page_t *page,
                                rp_member_fn fn, void *ctx)
{
    sq_st_t *st = list_stmt(s, page, SQL_MEMBERS, SQL_MEMBERS_PAGE);
    char id[RP_DEVICE_ID_SIZE];
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, group_id);
    while ((rc = db_step(st)) == DB_ROW) {
        sq_text_col(st, 0, id, sizeof(id));
        fn(ctx, id);
    }
    return list_done(s, st, rc, "group members");
}

/* ---- deployments ---- */

static const char SQL_DEPLOY_INSERT[] =
    "INSERT INTO deployments (id, tenant_id, group_id, rollout, created, seq) VALUES"
    " (?, ?, ?, ?, ?, (SELECT coalesce(max(seq), 0) + 1 FROM deployments))";
static const char SQL_DEPLOY_IMAGE_INSERT[] =
    "INSERT INTO deployment_images (deployment_id, tenant_id, image_id) VALUES (?, ?, ?)";
static const char SQL_IMAGE_EXISTS[] = "SELECT 1 FROM images WHERE tenant_id = ? AND id = ?";
#define DEPLOY_COLUMNS                                                                             \
    "SELECT id, tenant_id, group_id, rollout, created, seq, status FROM deployments"
static const char SQL_DEPLOY_GET[] = DEPLOY_COLUMNS " WHERE tenant_id = ? AND id = ?";
static const char SQL_DEPLOY_CURRENT[] =
    DEPLOY_COLUMNS " WHERE group_id = ? ORDER BY seq DESC LIMIT 1";
static const char SQL_DEPLOY_LIST[] =
    DEPLOY_COLUMNS " WHERE tenant_id = ? ORDER BY seq LIMIT :limit";
static const char SQL_DEPLOY_PAGE[] = DEPLOY_COLUMNS " WHERE tenant_id = ?" SQ_PAGE_ON("id");
/* Column 7: whether it may be offered to the device (?2): active, or the device had it. */
static const char SQL_DEPLOY_OF_GROUP[] =
    "SELECT id, tenant_id, group_id, rollout, created, seq, status, CASE WHEN status = 'active'"
    " OR EXISTS (SELECT 1 FROM deployment_reached r WHERE r.deployment_id = deployments.id AND"
    " r.device_id = ?2) THEN 1 ELSE 0 END FROM deployments WHERE group_id = ?1 ORDER BY seq DESC";
static const char SQL_REACHED_INSERT[] =
    "INSERT INTO deployment_reached (deployment_id, device_id, at) VALUES (?, ?, ?)"
    " ON CONFLICT DO NOTHING";
static const char SQL_REACHED_LIST[] =
    "SELECT device_id FROM deployment_reached WHERE deployment_id = ? ORDER BY device_id";
/* Stopped is final: only stopping again changes (nothing in) a stopped one. */
static const char SQL_DEPLOY_STATUS_SET[] =
    "UPDATE deployments SET status = ?1 WHERE tenant_id = ?2"
    " AND id = ?3 AND (status != 'stopped' OR ?1 = 'stopped')";
static const char SQL_DEPLOY_IMAGES[] = "SELECT di.image_id FROM deployment_images di JOIN images i"
                                        " ON i.tenant_id = di.tenant_id AND i.id = di.image_id"
                                        " WHERE di.deployment_id = ? ORDER BY i.component";
static const char SQL_UPDATE_SET[] =
    "INSERT INTO device_updates (device_id, deployment_id, state, detail, at)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT(deployment_id, device_id) DO UPDATE SET"
    " state = excluded.state, detail = excluded.detail, at = excluded.at";
static const char SQL_UPDATES[] = "SELECT device_id, deployment_id, state, detail, at"
                                  " FROM device_updates WHERE deployment_id = ? ORDER BY device_id";
static const char SQL_DEPLOY_SELECTED[] =
    "UPDATE deployments SET selected = (SELECT count(*) FROM group_members"
    " WHERE group_id = ?2 AND rp_selects(?1, ?3, device_id)) WHERE id = ?1";

/* ---- a deployment's progress, kept by the writes (migrations.c: COUNTERS_SEED) ---- */

/* A device's standing in one deployment, as its progress counts it. */
typedef struct deploy_standing {
    bool in_scope; /* a member of its group that its rollout selects */
    bool reached;  /* served targets naming it */
    char state[sizeof(((rp_device_update_t *)0)->state)]; /* its report's ("": none) */
} deploy_standing_t;

static const char SQL_DEPLOY_MOVE[] =
    "UPDATE deployments SET selected = selected + ?2, reported_selected = reported_selected + ?3,"
    " reached_pending = reached_pending + ?4, departed = departed + ?5 WHERE id = ?1";
static const char SQL_DEPLOY_STATE_ADD[] =
    "INSERT INTO deployment_counts (deployment_id, state, n) VALUES (?1, ?2, ?3)"
    " ON CONFLICT (deployment_id, state) DO UPDATE SET n = deployment_counts.n + ?3";
/* The device's standing in the deployments of one or two groups (?1, ?2): each deployment's ID,
 * rollout and group, the device's report and whether it was reached. */
static const char SQL_DEPLOY_STANDINGS[] =
    "SELECT d.id, d.rollout, d.group_id, u.state, CASE WHEN r.device_id IS NULL THEN 0 ELSE 1 END"
    " FROM deployments d LEFT JOIN device_updates u ON u.deployment_id = d.id"
    " AND u.device_id = ?3 LEFT JOIN deployment_reached r ON r.deployment_id = d.id"
    " AND r.device_id = ?3 WHERE d.group_id = ?1 OR d.group_id = ?2";
/* The device's standing in one deployment (?1), and its group now. */
static const char SQL_DEPLOY_STANDING[] =
    "SELECT d.id, d.rollout, d.group_id, u.state, CASE WHEN r.device_id IS NULL THEN 0 ELSE 1 END,"
    " (SELECT group_id FROM group_members WHERE device_id = ?2)"
    " FROM deployments d LEFT JOIN device_updates u ON u.deployment_id = d.id"
    " AND u.device_id = ?2 LEFT JOIN deployment_reached r ON r.deployment_id = d.id"
    " AND r.device_id = ?2 WHERE d.id = ?1";

/* The counters a standing adds to (deployments' columns), in SQL_DEPLOY_MOVE's order. */
enum { TERM_SELECTED, TERM_REPORTED_SELECTED, TERM_REACHED_PENDING, TERM_DEPARTED, TERMS };

/* What a standing adds to each counter. A deployment's progress is over the devices it targets
 * now (in scope); a device out of scope that it reached or that reported it has left it, and
 * counts there only. Its report's state counts only while it is in scope. */
static void deploy_terms(const deploy_standing_t *d, int64_t t[TERMS])
{
    bool reported = d->state[0] != '\0';
    bool pending = !reported || strcmp(d->state, rp_update_state_name(RP_UPDATE_PENDING)) == 0;

    t[TERM_SELECTED] = d->in_scope;
    t[TERM_REPORTED_SELECTED] = d->in_scope && reported;
    t[TERM_REACHED_PENDING] = d->in_scope && d->reached && pending;
    t[TERM_DEPARTED] = !d->in_scope && (d->reached || reported);
}

/* The report state a standing counts under ("": none). */
static const char *deploy_state_counted(const deploy_standing_t *d)
{
    return d->in_scope ? d->state : "";
}

/* The rule of a deployment's counters: moved from what `before` adds to what `after` adds, in
 * the transaction of the write that changed the device's standing; nothing written when they
 * agree. Every writer of a report, a reach or a membership calls it. */
static rp_err_t deploy_counts_move(rp_store_t *s, const char *deployment_id,
                                   const deploy_standing_t *before, const deploy_standing_t *after)
{
    int64_t b[TERMS], a[TERMS];
    const char *was = deploy_state_counted(before), *is = deploy_state_counted(after);
    sq_st_t *st;
    rp_err_t err = RP_OK;

    deploy_terms(before, b);
    deploy_terms(after, a);
    if (memcmp(a, b, sizeof(a)) != 0) {
        if ((st = sq_stmt(s, SQL_DEPLOY_MOVE)) == NULL)
            return RP_ERR_IO;
        db_bind_text(st, 1, deployment_id);
        for (int k = 0; k < TERMS; k++)
            db_bind_int64(st, 2 + k, a[k] - b[k]);
        err = sq_step_done(s, st, NULL);
    }
    for (int side = 0; err == RP_OK && side < 2; side++) {
        const char *state = side == 0 ? was : is;
        if (strcmp(was, is) == 0 || state[0] == '\0')
            continue;
        if ((st = sq_stmt(s, SQL_DEPLOY_STATE_ADD)) == NULL)
            return RP_ERR_IO;
        db_bind_text(st, 1, deployment_id);
        db_bind_text(st, 2, state);
        db_bind_int64(st, 3, side == 0 ? -1 : 1);
        err = sq_step_done(s, st, NULL);
    }
    return err;
}

/* A row of SQL_DEPLOY_STANDING(S): the deployment (ID, rollout, group) and the device's report
 * and reach; in_scope as if the device were a member of member_group. */
static void standing_row(sq_st_t *st, const char *device_id, const char *member_group,
                         rp_deployment_t *d, deploy_standing_t *out)
{
    memset(d, 0, sizeof(*d));
    memset(out, 0, sizeof(*out));
    sq_text_col(st, 0, d->id, sizeof(d->id));
    d->rollout = db_column_int(st, 1);
    sq_text_col(st, 2, d->group_id, sizeof(d->group_id));
    if (!db_column_null(st, 3))
        sq_text_col(st, 3, out->state, sizeof(out->state));
    out->reached = db_column_int(st, 4) != 0;
    out->in_scope = member_group != NULL && strcmp(member_group, d->group_id) == 0 &&
                    rp_deployment_selects(d, device_id);
}

/* The device's standing in one deployment (*found false: no such deployment). */
static rp_err_t deploy_standing(rp_store_t *s, const char *deployment_id, const char *device_id,
                                deploy_standing_t *out, bool *found)
{
    sq_st_t *st = sq_stmt(s, SQL_DEPLOY_STANDING);
    char group[RP_ID_SIZE] = "";
    rp_deployment_t d;
    int rc;

    *found = false;
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, deployment_id);
    db_bind_text(st, 2, device_id);
    rc = db_step(st);
    if (rc == DB_ROW) {
        *found = true;
        if (!db_column_null(st, 5))
            sq_text_col(st, 5, group, sizeof(group));
        standing_row(st, device_id, group[0] != '\0' ? group : NULL, &d, out);
    }
    return list_done(s, st, rc == DB_ROW ? DB_DONE : rc, "deployment standing");
}

/* A device moved from group `from` ("" none) to `to`: its standing in every deployment of
 * either, moved. Read first, then written (one statement at a time on the connection). */
static rp_err_t deploy_member_moved(rp_store_t *s, const char *device_id, const char *from,
                                    const char *to)
{
    struct moved {
        rp_deployment_t d;
        deploy_standing_t st;
    } *v = NULL;
    size_t n = 0, cap = 0;
    sq_st_t *st = sq_stmt(s, SQL_DEPLOY_STANDINGS);
    rp_err_t err = RP_OK;
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, from);
    db_bind_text(st, 2, to);
    db_bind_text(st, 3, device_id);
    while ((rc = db_step(st)) == DB_ROW) {
        if (n == cap) {
            size_t c = cap != 0 ? cap * 2 : 8;
            void *p = realloc(v, c * sizeof(*v));
            if (p == NULL) {
                err = RP_ERR_NO_MEMORY;
                break;
            }
            v = p;
            cap = c;
        }
        standing_row(st, device_id, from, &v[n].d, &v[n].st);
        n++;
    }
    db_reset(st);
    if (err == RP_OK && rc != DB_DONE)
        err = sq_error(s, "deployment standings");
    for (size_t i = 0; err == RP_OK && i < n; i++) {
        deploy_standing_t after = v[i].st;
        after.in_scope =
            strcmp(v[i].d.group_id, to) == 0 && rp_deployment_selects(&v[i].d, device_id);
        err = deploy_counts_move(s, v[i].d.id, &v[i].st, &after);
    }
    free(v);
    return err;
}

rp_err_t rp_store_deployment_create(rp_store_t *s, rp_deployment_t *d)
{
    sq_st_t *st;
    rp_err_t err;

    err = sq_random_id('d', d->id, sizeof(d->id));
    if (err != RP_OK)
        return err;
    d->created = (int64_t)time(NULL);
    err = sq_begin(s);
    if (err != RP_OK)
        return err;
    for (size_t i = 0; err == RP_OK && i < d->nimages; i++) {
        st = sq_stmt(s, SQL_IMAGE_EXISTS);
        if (st == NULL) {
            err = RP_ERR_IO;
            break;
        }
        db_bind_text(st, 1, d->tenant_id);
        db_bind_text(st, 2, d->image_ids[i]);
        err = one_row(s, st, "image");
        if (err == RP_OK)
            db_reset(st);
    }
    st = err == RP_OK ? sq_stmt(s, SQL_DEPLOY_INSERT) : NULL;
    if (err == RP_OK && st == NULL)
        err = RP_ERR_IO;
    if (err == RP_OK) {
        db_bind_text(st, 1, d->id);
        db_bind_text(st, 2, d->tenant_id);
        db_bind_text(st, 3, d->group_id);
        db_bind_int(st, 4, d->rollout);
        db_bind_int64(st, 5, d->created);
        err = sq_step_done(s, st, NULL);
    }
    /* the members its rollout selects: counted here, once (the rollout never changes); from
     * now on each assignment moves the count (deploy_counts_move) */
    st = err == RP_OK ? sq_stmt(s, SQL_DEPLOY_SELECTED) : NULL;
    if (err == RP_OK && st == NULL)
        err = RP_ERR_IO;
    if (err == RP_OK) {
        db_bind_text(st, 1, d->id);
        db_bind_text(st, 2, d->group_id);
        db_bind_int(st, 3, d->rollout);
        err = sq_step_done(s, st, NULL);
    }
    for (size_t i = 0; err == RP_OK && i < d->nimages; i++) {
        st = sq_stmt(s, SQL_DEPLOY_IMAGE_INSERT);
        if (st == NULL) {
            err = RP_ERR_IO;
            break;
        }
        db_bind_text(st, 1, d->id);
        db_bind_text(st, 2, d->tenant_id);
        db_bind_text(st, 3, d->image_ids[i]);
        err = sq_step_done(s, st, NULL);
    }
    return sq_end(s, err);
}

static const char *const deploy_status_names[] = {
    [RP_DEPLOY_ACTIVE] = "active",
    [RP_DEPLOY_PAUSED] = "paused",
    [RP_DEPLOY_STOPPED] = "stopped",
};

const char *rp_deploy_status_name(rp_deploy_status_t st)
{
    return (unsigned)st < sizeof(deploy_status_names) / sizeof(deploy_status_names[0])
               ? deploy_status_names[st]
               : "stopped";
}

/* A status the store does not know (a newer server wrote it) reads as stopped: offered to no
 * device it has not reached. */
static rp_deploy_status_t deploy_status_parse(const char *name)
{
    for (size_t i = 0; i < sizeof(deploy_status_names) / sizeof(deploy_status_names[0]); i++)
        if (strcmp(name, deploy_status_names[i]) == 0)
            return (rp_deploy_status_t)i;
    return RP_DEPLOY_STOPPED;
}

/* The deployment in st's current row, with its images. */
static rp_err_t deployment_row(rp_store_t *s, sq_st_t *st, rp_deployment_t *d)
{
    sq_st_t *im;
    int rc;

    memset(d, 0, sizeof(*d));
    sq_text_col(st, 0, d->id, sizeof(d->id));
    sq_text_col(st, 1, d->tenant_id, sizeof(d->tenant_id));
    sq_text_col(st, 2, d->group_id, sizeof(d->group_id));
    d->rollout = db_column_int(st, 3);
    d->created = db_column_int64(st, 4);
    d->seq = db_column_int64(st, 5);
    {
        char status[16];
        sq_text_col(st, 6, status, sizeof(status));
        d->status = deploy_status_parse(status);
    }
    im = sq_stmt(s, SQL_DEPLOY_IMAGES);
    if (im == NULL)
        return RP_ERR_IO;
    db_bind_text(im, 1, d->id);
    while ((rc = db_step(im)) == DB_ROW && d->nimages < RP_DEPLOY_IMAGES_MAX)
        sq_text_col(im, 0, d->image_ids[d->nimages++], RP_IMAGE_ID_SIZE);
    if (rc == DB_ROW) /* more than a deployment holds: the API never makes one */
        rc = DB_DONE;
    return list_done(s, im, rc, "deployment images");
}

static rp_err_t deployment_one(rp_store_t *s, sq_st_t *st, rp_deployment_t *out)
{
    rp_err_t err = one_row(s, st, "deployment");

    if (err == RP_OK) {
        err = deployment_row(s, st, out);
        db_reset(st);
    }
    return err;
}

rp_err_t rp_store_deployment_get(rp_store_t *s, const char *tenant_id, const char *id,
                                 rp_deployment_t *out)
{
    sq_st_t *st = sq_stmt(s, SQL_DEPLOY_GET);

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    db_bind_text(st, 2, id);
    return deployment_one(s, st, out);
}

rp_err_t rp_store_deployment_current(rp_store_t *s, const char *group_id, rp_deployment_t *out)
{
    sq_st_t *st = sq_stmt(s, SQL_DEPLOY_CURRENT);

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, group_id);
    return deployment_one(s, st, out);
}

rp_err_t rp_store_deployment_list(rp_store_t *s, const char *tenant_id, const rp_page_t *page,
                                  rp_deployment_fn fn, void *ctx)
{
    sq_st_t *st = list_stmt(s, page, SQL_DEPLOY_LIST, SQL_DEPLOY_PAGE);
    rp_deployment_t d;
    rp_err_t err = RP_OK;
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    while (err == RP_OK && (rc = db_step(st)) == DB_ROW) {
        err = deployment_row(s, st, &d);
        if (err == RP_OK)
            fn(ctx, &d);
    }
    if (err != RP_OK) {
        db_reset(st);
        return err;
    }
    return list_done(s, st, rc, "deployments");
}

bool rp_deployment_selects(const rp_deployment_t *d, const char *device_id)
{
    char in[RP_ID_SIZE + RP_DEVICE_ID_SIZE + 1];
    uint8_t h[RP_SHA256_LEN];
    uint32_t v;

    if (d->rollout >= 100)
        return true;
    if (d->rollout <= 0)
        return false;
    snprintf(in, sizeof(in), "%s/%s", d->id, device_id);
    if (rp_sha256(in, strlen(in), h) != RP_OK)
        return false;
    v = (uint32_t)rp_be_get(h, 4);
    return v % 10000 < (uint32_t)d->rollout * 100;
}

rp_err_t rp_store_device_update_set(rp_store_t *s, const rp_device_update_t *u)
{
    deploy_standing_t before, after;
    bool found = false;
    sq_st_t *st;
    rp_err_t err = sq_begin(s);

    if (err != RP_OK)
        return err;
    /* Whether the deployment targets the device is read under the write lock that a move of
     * the device takes too (rp_store_device_assign): a report racing a move is judged by the
     * membership it commits beside, never one read before */
    err = deploy_standing(s, u->deployment_id, u->device_id, &before, &found);
    if (err == RP_OK && (!found || !before.in_scope))
        err = RP_ERR_NOT_FOUND;
    st = err == RP_OK ? sq_stmt(s, SQL_UPDATE_SET) : NULL;
    if (err == RP_OK && st == NULL)
        err = RP_ERR_IO;
    if (err == RP_OK) {
        db_bind_text(st, 1, u->device_id);
        db_bind_text(st, 2, u->deployment_id);
        db_bind_text(st, 3, u->state);
        db_bind_text(st, 4, u->detail);
        db_bind_int64(st, 5, u->at);
        err = sq_step_done(s, st, NULL);
    }
    if (err == RP_OK) {
        after = before;
        snprintf(after.state, sizeof(after.state), "%s", u->state);
        err = deploy_counts_move(s, u->deployment_id, &before, &after);
    }
    return sq_end(s, err);
}

rp_err_t rp_store_device_updates(rp_store_t *s, const char *deployment_id, rp_device_update_fn fn,
                                 void *ctx)
{
    sq_st_t *st = sq_stmt(s, SQL_UPDATES);
    rp_device_update_t u;
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, deployment_id);
    while ((rc = db_step(st)) == DB_ROW) {
        memset(&u, 0, sizeof(u));
        sq_text_col(st, 0, u.device_id, sizeof(u.device_id));
        sq_text_col(st, 1, u.deployment_id, sizeof(u.deployment_id));
        sq_text_col(st, 2, u.state, sizeof(u.state));
        sq_text_col(st, 3, u.detail, sizeof(u.detail));
        u.at = db_column_int64(st, 4);
        fn(ctx, &u);
    }
    return list_done(s, st, rc, "device updates");
}

rp_err_t rp_store_deployment_for_device(rp_store_t *s, const char *group_id, const char *device_id,
                                        rp_deployment_t *out)
{
    sq_st_t *st = sq_stmt(s, SQL_DEPLOY_OF_GROUP);
    rp_err_t err = RP_ERR_NOT_FOUND;
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, group_id);
    db_bind_text(st, 2, device_id);
    /* Newest first; deciding needs only the ID, rollout and whether it may be offered; the images
     * are read for the one. */
    while ((rc = db_step(st)) == DB_ROW) {
        rp_deployment_t d;
        memset(&d, 0, sizeof(d));
        sq_text_col(st, 0, d.id, sizeof(d.id));
        d.rollout = db_column_int(st, 3);
        if (db_column_int(st, 7) != 0 && rp_deployment_selects(&d, device_id)) {
            err = deployment_row(s, st, out);
            break;
        }
    }
    if (rc != DB_ROW && rc != DB_DONE)
        err = sq_error(s, "deployments");
    db_reset(st);
    return err;
}

rp_err_t rp_store_deployment_reached(rp_store_t *s, const char *deployment_id,
                                     const char *device_id, int64_t at)
{
    deploy_standing_t before, after;
    bool found = false;
    int changes = 0;
    sq_st_t *st;
    rp_err_t err = sq_begin(s);

    if (err != RP_OK)
        return err;
    err = deploy_standing(s, deployment_id, device_id, &before, &found);
    st = err == RP_OK ? sq_stmt(s, SQL_REACHED_INSERT) : NULL;
    if (err == RP_OK && st == NULL)
        err = RP_ERR_IO;
    if (err == RP_OK) {
        db_bind_text(st, 1, deployment_id);
        db_bind_text(st, 2, device_id);
        db_bind_int64(st, 3, at);
        err = sq_step_done(s, st, &changes);
    }
    if (err == RP_OK && found && changes == 1) {
        after = before;
        after.reached = true;
        err = deploy_counts_move(s, deployment_id, &before, &after);
    }
    return sq_end(s, err);
}

static const char SQL_TARGETS_GET[] =
    "SELECT version, deployment_id FROM device_targets WHERE device_id = ?";
static const char SQL_TARGETS_SET[] =
    "INSERT INTO device_targets (device_id, version, deployment_id) VALUES (?1, ?2, ?3)"
    " ON CONFLICT(device_id) DO UPDATE SET version = ?2, deployment_id = ?3";

rp_err_t rp_store_device_targets_version(rp_store_t *s, const char *device_id,
                                         const char *deployment_id, int64_t seq, int64_t held,
                                         int64_t *version)
{
    char had_dep[RP_ID_SIZE] = "";
    int64_t had = 0;
    bool found = false;
    sq_st_t *st;
    rp_err_t err = sq_begin(s);
    int rc;

    if (err != RP_OK)
        return err;
    st = sq_stmt(s, SQL_TARGETS_GET);
    if (st == NULL)
        return sq_end(s, RP_ERR_IO);
    db_bind_text(st, 1, device_id);
    rc = db_step(st);
    if (rc == DB_ROW) {
        found = true;
        had = db_column_int64(st, 0);
        sq_text_col(st, 1, had_dep, sizeof(had_dep));
    }
    db_reset(st);
    if (rc != DB_ROW && rc != DB_DONE)
        return sq_end(s, sq_error(s, "device targets"));
    if (found && strcmp(had_dep, deployment_id) == 0 && had >= held) {
        *version = had;
        return sq_end(s, RP_OK);
    }
    *version = found && had >= seq ? had + 1 : seq;
    if (held > 0 && *version <= held) /* (the row went back: a restored database) */
        *version = held + 1;
    st = sq_stmt(s, SQL_TARGETS_SET);
    if (st == NULL)
        return sq_end(s, RP_ERR_IO);
    db_bind_text(st, 1, device_id);
    db_bind_int64(st, 2, *version);
    db_bind_text(st, 3, deployment_id);
    return sq_end(s, sq_step_done(s, st, NULL));
}

rp_err_t rp_store_deployment_reached_list(rp_store_t *s, const char *deployment_id,
                                          rp_reached_fn fn, void *ctx)
{
    sq_st_t *st = sq_stmt(s, SQL_REACHED_LIST);
    char id[RP_DEVICE_ID_SIZE];
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, deployment_id);
    while ((rc = db_step(st)) == DB_ROW) {
        sq_text_col(st, 0, id, sizeof(id));
        fn(ctx, id);
    }
    return list_done(s, st, rc, "deployment devices reached");
}

/*
 * A deployment's devices, as its detail lists them: the devices of its group its rollout selects
 * (rp_selects: rp_deployment_selects in SQL), and those that left it (SQ_DEPLOY_TARGETS false:
 * moved out of the group since it reached them or they reported it), each with its report (none:
 * pending) and whether it left. The page is the merge of three index ranges in device ID order
 * (device_updates' key, group_members_group: the members without a report, deployment_reached's
 * key: the devices reached without a report), so it reads its own rows only.
 */
/* clang-format off */
#define SQ_DEPLOY_TARGETS(dev)                                                                     \
    "(EXISTS (SELECT 1 FROM group_members t WHERE t.device_id = " dev " AND t.group_id = :group)"  \
    " AND rp_selects(:dep, :rollout, " dev "))"
static const char SQL_DEPLOY_DEVICES[] =
    "SELECT device_id, state, detail, at,"
    " CASE WHEN " SQ_DEPLOY_TARGETS("u.device_id") " THEN 0 ELSE 1 END"
    " FROM device_updates u WHERE deployment_id = :dep AND " SQ_KEY_RANGE("device_id")
    " UNION ALL SELECT device_id, NULL, NULL, NULL, 0 FROM group_members m"
    " WHERE group_id = :group AND " SQ_KEY_RANGE("device_id")
    " AND rp_selects(:dep, :rollout, device_id) AND NOT EXISTS (SELECT 1 FROM device_updates u"
    " WHERE u.deployment_id = :dep AND u.device_id = m.device_id)"
    " UNION ALL SELECT device_id, NULL, NULL, NULL, 1 FROM deployment_reached r"
    " WHERE deployment_id = :dep AND " SQ_KEY_RANGE("device_id")
    " AND NOT " SQ_DEPLOY_TARGETS("r.device_id") " AND NOT EXISTS (SELECT 1 FROM device_updates u"
    " WHERE u.deployment_id = :dep AND u.device_id = r.device_id) ORDER BY 1 LIMIT :limit";
/* clang-format on */
/* Its counts, kept by the writes (deploy_counts_move, the groups' members): one
 * row each, whatever the group's size. */
static const char SQL_DEPLOY_COUNTS[] =
    "SELECT g.members, d.selected, d.reported_selected, d.reached_pending, d.departed"
    " FROM deployments d"
    " JOIN device_groups g ON g.id = d.group_id WHERE d.id = :dep";
static const char SQL_DEPLOY_STATES[] =
    "SELECT state, n FROM deployment_counts WHERE deployment_id = :dep AND n > 0 ORDER BY state";

const char *const sq_sql_members_page = SQL_MEMBERS_PAGE, *const sq_sql_deploy_devices =
                                                              SQL_DEPLOY_DEVICES;

static void bind_deployment(sq_st_t *st, const rp_deployment_t *d)
{
    db_bind_text(st, db_param(st, ":dep"), d->id);
    db_bind_text(st, db_param(st, ":group"), d->group_id);
    db_bind_int(st, db_param(st, ":rollout"), d->rollout);
}

rp_err_t rp_store_deployment_devices(rp_store_t *s, const rp_deployment_t *d, const rp_page_t *page,
                                     rp_device_update_fn fn, void *ctx)
{
    sq_st_t *st = sq_stmt(s, SQL_DEPLOY_DEVICES);
    rp_device_update_t u;
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    sq_bind_page(st, page);
    bind_deployment(st, d);
    while ((rc = db_step(st)) == DB_ROW) {
        memset(&u, 0, sizeof(u));
        sq_text_col(st, 0, u.device_id, sizeof(u.device_id));
        snprintf(u.deployment_id, sizeof(u.deployment_id), "%s", d->id);
        if (db_column_null(st, 1)) {
            snprintf(u.state, sizeof(u.state), "%s", rp_update_state_name(RP_UPDATE_PENDING));
        } else {
            sq_text_col(st, 1, u.state, sizeof(u.state));
            sq_text_col(st, 2, u.detail, sizeof(u.detail));
            u.at = db_column_int64(st, 3);
        }
        u.left = db_column_int(st, 4) != 0;
        fn(ctx, &u);
    }
    return list_done(s, st, rc, "deployment devices");
}

rp_err_t rp_store_deployment_progress(rp_store_t *s, const rp_deployment_t *d,
                                      rp_deploy_progress_t *out, rp_state_count_fn fn, void *ctx)
{
    sq_st_t *st = sq_stmt(s, SQL_DEPLOY_COUNTS);
    const char *pending = rp_update_state_name(RP_UPDATE_PENDING);
    int64_t reported_selected = 0, reached_pending = 0;
    rp_err_t err;
    int rc;

    memset(out, 0, sizeof(*out));
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, db_param(st, ":dep"), d->id);
    if ((rc = db_step(st)) == DB_ROW) {
        out->in_group = db_column_int64(st, 0);
        out->selected = db_column_int64(st, 1);
        reported_selected = db_column_int64(st, 2);
        reached_pending = db_column_int64(st, 3);
        out->left = db_column_int64(st, 4);
    }
    err = list_done(s, st, rc == DB_ROW ? DB_DONE : rc, "deployment counts");
    if (err != RP_OK)
        return err;
    out->unreported = out->selected - reported_selected;
    out->reached = reached_pending; /* and below, the reports past pending */
    st = sq_stmt(s, SQL_DEPLOY_STATES);
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, db_param(st, ":dep"), d->id);
    while ((rc = db_step(st)) == DB_ROW) {
        const char *state = (const char *)db_column_text(st, 0);
        int64_t n = db_column_int64(st, 1);
        if (state == NULL)
            continue;
        if (strcmp(state, pending) != 0)
            out->reached += n;
        fn(ctx, state, n);
    }
    return list_done(s, st, rc, "deployment states");
}

rp_err_t rp_store_deployment_set_status(rp_store_t *s, const char *tenant_id, const char *id,
                                        rp_deploy_status_t to, rp_deployment_t *out)
{
    sq_st_t *st;
    rp_err_t err = sq_begin(s);

    if (err != RP_OK)
        return err;
    st = sq_stmt(s, SQL_DEPLOY_STATUS_SET);
    if (st == NULL)
        return sq_end(s, RP_ERR_IO);
    db_bind_text(st, 1, rp_deploy_status_name(to));
    db_bind_text(st, 2, tenant_id);
    db_bind_text(st, 3, id);
    err = sq_step_done(s, st, NULL);
    if (err == RP_OK)
        err = rp_store_deployment_get(s, tenant_id, id, out);
    if (err == RP_OK && out->status != to)
        err = RP_ERR_DENIED;
    return sq_end(s, err);
}

/* ---- update metadata ---- */

static const char SQL_UKEY_INSERT[] =
    "INSERT INTO update_keys (tenant_id, seq, key_pem, spki, created) VALUES (?, ?, ?, ?, ?)";
static const char SQL_UKEY_GET[] = "SELECT seq, key_pem, spki FROM update_keys"
                                   " WHERE tenant_id = ? AND (seq = ? OR ? = 0)"
                                   " ORDER BY seq DESC LIMIT 1";
static const char SQL_UKEY_LIST[] =
    "SELECT seq, spki FROM update_keys WHERE tenant_id = ? ORDER BY seq DESC";
static const char SQL_ROOT_INSERT[] = "INSERT INTO update_roots (tenant_id, version, envelope,"
                                      " expires, created) VALUES (?, ?, ?, ?, ?)";
static const char SQL_ROOT_LATEST[] = "SELECT version, envelope FROM update_roots"
                                      " WHERE tenant_id = ? ORDER BY version DESC LIMIT 1";
static const char SQL_ROOTS_AFTER[] = "SELECT version, envelope, expires FROM update_roots"
                                      " WHERE tenant_id = ? AND version > ? ORDER BY version";

rp_err_t rp_store_update_key_put(rp_store_t *s, const char *tenant_id, int64_t seq,
                                 const char *key_pem, const uint8_t *spki, size_t spki_len)
{
    sq_st_t *st = sq_stmt(s, SQL_UKEY_INSERT);

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    db_bind_int64(st, 2, seq);
    db_bind_text(st, 3, key_pem);
    db_bind_blob(st, 4, spki, (int)spki_len);
    db_bind_int64(st, 5, (int64_t)time(NULL));
    return sq_step_done(s, st, NULL);
}

rp_err_t rp_store_update_key_get(rp_store_t *s, const char *tenant_id, int64_t seq,
                                 int64_t *seq_out, char **key_pem, uint8_t spki[RP_PUBKEY_DER_MAX],
                                 size_t *spki_len)
{
    sq_st_t *st = sq_stmt(s, SQL_UKEY_GET);
    const char *pem;
    int n;
    rp_err_t err;

    *key_pem = NULL;
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    db_bind_int64(st, 2, seq);
    db_bind_int64(st, 3, seq);
    err = one_row(s, st, "update key");
    if (err != RP_OK)
        return err;
    *seq_out = db_column_int64(st, 0);
    pem = db_column_text(st, 1);
    n = db_column_bytes(st, 2);
    if (pem == NULL || n <= 0 || n > RP_PUBKEY_DER_MAX) {
        err = RP_ERR_MALFORMED;
    } else {
        memcpy(spki, db_column_blob(st, 2), (size_t)n);
        *spki_len = (size_t)n;
        *key_pem = strdup((const char *)pem);
        if (*key_pem == NULL)
            err = RP_ERR_NO_MEMORY;
    }
    db_reset(st);
    return err;
}

rp_err_t rp_store_update_keys(rp_store_t *s, const char *tenant_id, rp_update_key_fn fn, void *ctx)
{
    sq_st_t *st = sq_stmt(s, SQL_UKEY_LIST);
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    while ((rc = db_step(st)) == DB_ROW) {
        int n = db_column_bytes(st, 1);
        if (n > 0 && n <= RP_PUBKEY_DER_MAX)
            fn(ctx, db_column_int64(st, 0), db_column_blob(st, 1), (size_t)n);
    }
    return list_done(s, st, rc, "update keys");
}

rp_err_t rp_store_root_add(rp_store_t *s, const char *tenant_id, int64_t version,
                           const char *envelope, int64_t expires)
{
    sq_st_t *st = sq_stmt(s, SQL_ROOT_INSERT);

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    db_bind_int64(st, 2, version);
    db_bind_text(st, 3, envelope);
    db_bind_int64(st, 4, expires);
    db_bind_int64(st, 5, (int64_t)time(NULL));
    return sq_step_done(s, st, NULL);
}

rp_err_t rp_store_root_latest(rp_store_t *s, const char *tenant_id, int64_t *version,
                              char **envelope)
{
    sq_st_t *st = sq_stmt(s, SQL_ROOT_LATEST);
    const char *text;
    rp_err_t err;

    if (envelope != NULL)
        *envelope = NULL;
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    err = one_row(s, st, "root metadata");
    if (err != RP_OK)
        return err;
    *version = db_column_int64(st, 0);
    text = db_column_text(st, 1);
    if (envelope != NULL && (*envelope = strdup(text != NULL ? (const char *)text : "")) == NULL)
        err = RP_ERR_NO_MEMORY;
    db_reset(st);
    return err;
}

rp_err_t rp_store_roots_after(rp_store_t *s, const char *tenant_id, int64_t after, rp_root_fn fn,
                              void *ctx)
{
    sq_st_t *st = sq_stmt(s, SQL_ROOTS_AFTER);
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, tenant_id);
    db_bind_int64(st, 2, after);
    while ((rc = db_step(st)) == DB_ROW) {
        const char *text = db_column_text(st, 1);
        fn(ctx, db_column_int64(st, 0), text != NULL ? (const char *)text : "",
           db_column_int64(st, 2));
    }
    return list_done(s, st, rc, "root metadata");
}

/* ---- what each device's root of trust accepts ---- */

static const char SQL_COUNTER_MAX_GET[] =
    "SELECT security_counter_max FROM device_counter_max WHERE device_id = ?";
static const char SQL_COUNTER_MAX_SET[] =
    "INSERT INTO device_counter_max (device_id, security_counter_max, since) VALUES (?, ?, ?)"
    " ON CONFLICT(device_id) DO UPDATE SET security_counter_max = excluded.security_counter_max,"
    " since = excluded.since"
    " WHERE device_counter_max.security_counter_max != excluded.security_counter_max";
static const char SQL_COUNTER_MAX_BELOW[] =
    "SELECT c.device_id, c.security_counter_max FROM group_members m"
    " JOIN device_counter_max c ON c.device_id = m.device_id"
    " JOIN devices d ON d.id = m.device_id"
    " WHERE m.group_id = ? AND c.security_counter_max < ? AND d.blocked = 0"
    " ORDER BY c.device_id";

rp_err_t rp_store_device_counter_max_set(rp_store_t *s, const char *device_id, uint32_t max,
                                         int64_t now)
{
    sq_st_t *st = sq_stmt(s, SQL_COUNTER_MAX_GET);
    int rc;

    /* Every targets request reports it, and it seldom changes: read first, so that a fleet's
     * polls cost no write transactions (which would queue behind the recorder's). */
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, device_id);
    rc = db_step(st);
    if (rc == DB_ROW && db_column_int64(st, 0) == (int64_t)max) {
        db_reset(st);
        return RP_OK;
    }
    db_reset(st);
    if (rc != DB_ROW && rc != DB_DONE)
        return sq_error(s, "a device's security counter limit");
    st = sq_stmt(s, SQL_COUNTER_MAX_SET);
    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, device_id);
    db_bind_int64(st, 2, max);
    db_bind_int64(st, 3, now);
    return sq_step_done(s, st, NULL);
}

rp_err_t rp_store_group_counter_max_below(rp_store_t *s, const char *group_id, uint32_t counter,
                                          rp_counter_max_fn fn, void *ctx)
{
    sq_st_t *st = sq_stmt(s, SQL_COUNTER_MAX_BELOW);
    char id[RP_DEVICE_ID_SIZE];
    int rc;

    if (st == NULL)
        return RP_ERR_IO;
    db_bind_text(st, 1, group_id);
    db_bind_int64(st, 2, counter);
    while ((rc = db_step(st)) == DB_ROW) {
        sq_text_col(st, 0, id, sizeof(id));
        fn(ctx, id, (uint32_t)db_column_int64(st, 1));
    }
    return list_done(s, st, rc, "devices' security counter limits");
}
