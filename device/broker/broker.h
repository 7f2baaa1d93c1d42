/*
 * rampart-broker's loop (run by `rampart-unpack broker`, confined: docs/compartments.md, "The app
 * broker"): the apps' channels (appchan.h), each with the rules of its manifest the monitor gave
 * (gate.h: ADD, DROP), answered here; what needs the root of trust asked of the monitor on mon.
 */
#ifndef RAMPART_BROKER_H
#define RAMPART_BROKER_H

#include <stdint.h>

/* How long an end kept by a broker before (taken back from its store of kept ends) is counted, at
 * most, from the time the first broker took it back: then it is closed, whatever it still holds
 * (docs/compartments.md, "The app broker"; review r10 L2). Tests shorten it. */
#define RP_BROKER_RESTORED_MS (120 * 1000)
extern int64_t rp_broker_restored_ms;

/* Serve until the monitor closes mon: 0; 1 on a failure (said). */
int rp_broker_run(int mon);

#endif /* RAMPART_BROKER_H */
