/*
 * Failpoints: numbered places where a test can cut the process dead, as a power cut would, to
 * prove that what was written up to there leaves a consistent state. Every durable write step of
 * the device's update path passes one.
 *
 * With RAMPART_FAILPOINT=N in the environment, the Nth failpoint reached ends the process at once
 * with _exit(RP_FAILPOINT_EXIT): no cleanup, no flush, no atexit. With
 * RAMPART_FAILPOINT_TRACE=FILE, each failpoint reached appends its number and name to FILE, so a
 * test learns how many steps an operation has. With RAMPART_FAILPOINT_FROM=PREFIX as well, the
 * count (and the trace) starts at the first failpoint whose name starts with PREFIX: a long-lived
 * process (the monitor) is cut in one operation whatever it wrote before. Without either variable
 * a failpoint costs one branch.
 */
#ifndef RAMPART_FAILPOINT_H
#define RAMPART_FAILPOINT_H

#define RP_FAILPOINT_EXIT 99

void rp_failpoint(const char *name);

#endif /* RAMPART_FAILPOINT_H */
