/*
 * Fuzz target: the body of POST /api/v1/device/reports as the service decodes it
 * (rp_report_batch_decode, server/device/reports.c). A refused batch says why and holds nothing; an
 * accepted one holds at most 64 reports, each either refused with a reason or decoded within
 * every bound of docs/failure-reporting.md, a crash with its bucket ID. Seeds:
 * fuzz/corpus/reports.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reports.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rp_report_batch_t b;
    const char *why;

    if (rp_report_batch_decode(data, size, &b, &why) != RP_OK) {
        if (why == NULL || b.reports != NULL || b.n != 0)
            abort();
        return 0;
    }
    if (b.n > RP_REPORTS_BATCH_MAX || size > RP_REPORTS_BATCH_BYTES)
        abort();
    for (size_t i = 0; i < b.n; i++) {
        const rp_report_t *r = &b.reports[i];
        if (r->refused != NULL) {
            if (r->json != NULL)
                abort();
            continue;
        }
        if (r->json == NULL || strlen(r->json) > RP_REPORT_BYTES || r->seq < 0 ||
            r->seq >= RP_REPORT_SEQ_LIMIT || !rp_report_kind_known(r->kind) ||
            strlen(r->reason) > RP_REPORT_REASON_MAX)
            abort();
        if (r->has_crash && (r->crash.nframes > RP_REPORT_FRAMES_MAX || r->crash.signal < 1 ||
                             r->crash.signal > 64 || strlen(r->bucket) != RP_BUCKET_ID_LEN))
            abort();
    }
    rp_report_batch_free(&b);
    return 0;
}
