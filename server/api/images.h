/*
 * Image intake (images.c): image signing keys, uploads, images; the use other routes make of a
 * finished upload; and the shape of the IDs the service makes, which the fleet's routes check too.
 */
#ifndef RAMPART_SERVER_IMAGES_H
#define RAMPART_SERVER_IMAGES_H

#include <stdbool.h>
#include <stddef.h>

#include "store.h"
#include "store/blob.h"

#define RP_IMAGE_MAX (128ull * 1024 * 1024) /* an uploaded image */
/* An upload at most: an image (RP_IMAGE_MAX) or a debug file (reports.h, RP_SYMBOLS_MAX). */
#define RP_UPLOAD_MAX (256ull * 1024 * 1024)

typedef struct rp_req rp_req_t;

void rp_h_image_keys_list(rp_req_t *r);
void rp_h_image_key_add(rp_req_t *r);
void rp_h_upload_create(rp_req_t *r);
void rp_h_upload_get(rp_req_t *r);
void rp_h_upload_put(rp_req_t *r);
/* Drop the uploads nobody wrote to for a day (a few at a time: at each new upload, and every
 * RP_UPLOADS_SWEEP_EVERY seconds on one loop of each replica), and what blob puts killed midway
 * left. Safe beside other replicas' sweeps and writes (rp_store_upload_drop_stale). */
#define RP_UPLOADS_SWEEP_EVERY 600
void rp_uploads_sweep(rp_store_t *s, rp_blobs_t *b);
void rp_h_images_list(rp_req_t *r);
void rp_h_image_create(rp_req_t *r);
void rp_h_image_get(rp_req_t *r);

/* Another route's use of a finished upload (debug files in reports.c): the tenant's upload id
 * with all its bytes. false: a reply was sent (404, 409 while bytes are missing, 500). Then
 * rp_upload_copy_out puts its bytes in a local file (atomically), and rp_upload_forget drops its
 * row and its bytes. */
bool rp_upload_finished(rp_req_t *r, const char *id, rp_upload_t *u);
rp_err_t rp_upload_copy_out(rp_req_t *r, const rp_upload_t *u, const char *path) RP_MUST_CHECK;
void rp_upload_forget(rp_req_t *r, const char *id);

/* Whether s has the shape of an ID the service made: prefix ('u' an upload, 'd' a deployment),
 * '_' and 24 lowercase hex digits. A path's ID of any other shape names nothing. */
bool rp_object_id_valid(const char *s, char prefix);
/* Whether s has the shape of an image ID: the SHA-256 of its bytes, 64 lowercase hex digits. */
bool rp_image_id_valid(const char *s);

#endif /* RAMPART_SERVER_IMAGES_H */
