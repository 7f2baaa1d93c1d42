/*
 * rampart-broker's loop (run by `rampart-unpack broker`, confined: docs/compartments.md, "The app
 * broker"): the apps' channels (appchan.h), each with the rules of its manifest the monitor gave
 * (gate.h: ADD, DROP), answered here; what needs the root of trust asked of the monitor on mon.
 */
#ifndef RAMPART_BROKER_H
#define RAMPART_BROKER_H

/* Serve until the monitor closes mon: 0; 1 on a failure (said). */
int rp_broker_run(int mon);

#endif /* RAMPART_BROKER_H */
