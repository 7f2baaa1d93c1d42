/*
 * A TPM connection that stays open, for the tests: one TCP connection to swtpm's command port,
 * relayed to and from stdin and stdout, kept until stdin ends. Run by the TSS's cmd TCTI
 * ("cmd:tpm-pipe PORT"), it makes swtpm behave like /dev/tpm0: swtpm serves one connection at a
 * time, so while a process (or a copy of its descriptors in a child) holds one, another cannot
 * be served. (The swtpm TCTI connects once per command, which hides that.)
 *   tpm-pipe PORT
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rampart/bytes.h"

/* TPM responses: a 10-byte header (tag, size, code), the size counting the whole response. */
#define HEADER_LEN 10
#define RESPONSE_MAX 8192

/* Write all of buf[0..len) to fd. */
static int write_all(int fd, const uint8_t *buf, size_t len)
{
    for (size_t done = 0; done < len;) {
        ssize_t w = write(fd, buf + done, len - done);
        if (w <= 0)
            return 0;
        done += (size_t)w;
    }
    return 1;
}

/* A command: what one read of stdin gives, to the TPM (it reads commands by their size). */
static int command(int s)
{
    uint8_t buf[4096];
    ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

    return n > 0 && write_all(s, buf, (size_t)n);
}

/* A response: read whole from the TPM, then written to stdout in one write, which a pipe passes on
 * whole (the cmd TCTI reads a response at once: one in parts was taken as malformed). */
static int response(int s)
{
    static uint8_t buf[RESPONSE_MAX];
    size_t have = 0, want = HEADER_LEN;

    while (have < want) {
        ssize_t n = read(s, buf + have, want - have);
        if (n <= 0)
            return 0;
        have += (size_t)n;
        if (have == HEADER_LEN) {
            want = (size_t)rp_be_get(buf + 2, 4);
            if (want < HEADER_LEN || want > sizeof(buf)) {
                fprintf(stderr, "tpm-pipe: a response of %zu bytes\n", want);
                return 0;
            }
        }
    }
    return write_all(STDOUT_FILENO, buf, have);
}

int main(int argc, char **argv)
{
    struct sockaddr_in a = {0};
    char *end;
    long port = argc == 2 ? strtol(argv[1], &end, 10) : 0;
    int s;

    if (argc != 2 || *end != '\0' || port <= 0 || port > 65535) {
        fprintf(stderr, "usage: tpm-pipe PORT\n");
        return 2;
    }
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) != 0) {
        perror("tpm-pipe: connect");
        return 1;
    }
    for (;;) {
        struct pollfd p[2] = {
            {.fd = STDIN_FILENO, .events = POLLIN},
            {.fd = s,            .events = POLLIN}
        };
        if (poll(p, 2, -1) < 0)
            return 1;
        if (p[0].revents != 0 && !command(s))
            return 0; /* the TCTI let go: the connection ends with this process */
        if (p[1].revents != 0 && !response(s))
            return 0;
    }
}
