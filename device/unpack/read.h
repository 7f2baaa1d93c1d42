/*
 * rampart-unpack read: the app supervisor's long-lived event reader (device/monitor/reader.h).
 */
#ifndef RAMPART_UNPACK_READ_H
#define RAMPART_UNPACK_READ_H

#include <stdbool.h>

#define RP_READ_CHAN 0  /* the pair to the supervisor (stdin) */
#define RP_READ_AUDIT 3 /* the bound audit multicast socket */
#define RP_READ_NFLOG 4 /* the bound NFLOG socket */

/* Read the sockets given (audit, nflog: whether each is there) until the supervisor's end is
 * gone, answering each refusal as a record. The exit status. */
int rp_read_run(bool audit, bool nflog);

#endif /* RAMPART_UNPACK_READ_H */
