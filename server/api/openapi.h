/*
 * The API's description: docs/openapi.yaml as JSON, compiled in. scripts/openapi-c writes the
 * definitions at build time (build/gen/openapi_doc.c), so the server serves the document of the
 * tree it was built from; api.c serves it at GET /api/v1/openapi.json.
 */
#ifndef RP_SERVER_OPENAPI_H
#define RP_SERVER_OPENAPI_H

#include <stddef.h>

extern const unsigned char rp_openapi_json[];
extern const size_t rp_openapi_json_len;
extern const char rp_openapi_etag[]; /* a strong ETag of the bytes, quoted */

#endif
