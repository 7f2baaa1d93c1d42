/*
 * A software TPM for tests: starts swtpm on a free loopback port with a fresh state directory,
 * and stops it. Tests skip nothing: if swtpm cannot start, the test fails.
 */
#ifndef RAMPART_TEST_SWTPM_H
#define RAMPART_TEST_SWTPM_H

#include <sys/types.h>

typedef struct tu_swtpm {
    pid_t pid;
    int port;
    char dir[64];
    char tcti[96]; /* "swtpm:host=127.0.0.1,port=N" */
} tu_swtpm_t;

/* 0 on success. */
int tu_swtpm_start(tu_swtpm_t *t);
void tu_swtpm_stop(tu_swtpm_t *t);

#endif
