/*
 * mqtt-publisher: a sample Rampart app that publishes to an MQTT broker over mutual TLS with the
 * device identity. Its manifest (app_manifest.json) has DeviceAuthentication, so the monitor gives
 * it the device certificate chain and signs its TLS 1.3 handshakes; the key never leaves the root
 * of trust (a TPM on a real device). libmosquitto does the MQTT, on the SSL_CTX the app client
 * library fills (MOSQ_OPT_SSL_CTX).
 *
 *   mqtt-publisher --host H --port P --cafile BROKER_CA --topic T --message M [--retain]
 *                  [--wait-ms N]
 *
 * It says "ready" (the app contract) once connected, publishes with QoS 1 and exits once the
 * broker acknowledged. Exit: 0 published; 2 the monitor refused the device identity (its reason
 * is printed); 1 anything else.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "app_client.h"

static rp_app_client_t client;
static int published_mid = -1;
static bool published;

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_publish(struct mosquitto *m, void *obj, int mid)
{
    (void)m;
    (void)obj;
    if (mid == published_mid)
        published = true;
}

/* The app contract: "ready" on RAMPART_READY_FD, when there is one. */
static void say_ready(void)
{
    const char *fd = getenv("RAMPART_READY_FD");

    if (fd != NULL && write(atoi(fd), "ready", 5) != 5)
        fprintf(stderr, "mqtt-publisher: cannot say ready: %s\n", strerror(errno));
}

static SSL_CTX *tls_context(const char *host, const char *cafile, int *refused)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    X509_VERIFY_PARAM *param;
    rp_err_t err;

    *refused = 0;
    if (ctx == NULL)
        return NULL;
    err = rp_app_ssl_ctx_use_identity(&client, ctx);
    if (err != RP_OK) {
        printf("identity refused: %s (%s)\n", client.message, rp_strerror(err));
        *refused = err == RP_ERR_DENIED || err == RP_ERR_NOT_FOUND;
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* The broker: its CA, and its name or address checked (libmosquitto leaves a context it is
     * given as it is). */
    param = SSL_CTX_get0_param(ctx);
    if (SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1 ||
        (X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1 &&
         X509_VERIFY_PARAM_set1_host(param, host, 0) != 1)) {
        fprintf(stderr, "mqtt-publisher: %s: cannot load the broker's CA\n", cafile);
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"host",    required_argument, NULL, 'h'},
        {"port",    required_argument, NULL, 'p'},
        {"cafile",  required_argument, NULL, 'c'},
        {"topic",   required_argument, NULL, 't'},
        {"message", required_argument, NULL, 'm'},
        {"retain",  no_argument,       NULL, 'r'},
        {"wait-ms", required_argument, NULL, 'w'},
        {NULL,      0,                 NULL, 0  }
    };
    const char *host = NULL, *cafile = NULL, *topic = NULL, *message = NULL;
    int port = 8883, opt, rc = 1, refused = 0;
    long wait_ms = 30000, deadline;
    bool retain = false, lib_init = false;
    struct mosquitto *mosq = NULL;
    SSL_CTX *ctx = NULL;
    rp_err_t err;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'c': cafile = optarg; break;
        case 't': topic = optarg; break;
        case 'm': message = optarg; break;
        case 'r': retain = true; break;
        case 'w': wait_ms = atol(optarg); break;
        default: return 1;
        }
    }
    if (host == NULL || cafile == NULL || topic == NULL || message == NULL) {
        fprintf(stderr, "usage: mqtt-publisher --host H --port P --cafile CA --topic T --message M "
                        "[--retain] [--wait-ms N]\n");
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    err = rp_app_client_open(&client);
    if (err != RP_OK) {
        fprintf(stderr,
                "mqtt-publisher: no channel to the monitor (%s is not set): run me as a "
                "Rampart app\n",
                RP_APP_CLIENT_ENV);
        return 1;
    }
    ctx = tls_context(host, cafile, &refused);
    if (ctx == NULL) {
        rc = refused ? 2 : 1;
        goto out;
    }
    mosquitto_lib_init();
    lib_init = true;
    mosq = mosquitto_new(NULL, true, NULL);
    if (mosq == NULL ||
        mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311) !=
            MOSQ_ERR_SUCCESS ||
        mosquitto_int_option(mosq, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0) != MOSQ_ERR_SUCCESS ||
        mosquitto_void_option(mosq, MOSQ_OPT_SSL_CTX, ctx) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "mqtt-publisher: cannot set up libmosquitto\n");
        goto out;
    }
    mosquitto_publish_callback_set(mosq, on_publish);
    /* The broker may come up after the app: retry until the deadline. */
    deadline = now_ms() + wait_ms;
    while ((opt = mosquitto_connect(mosq, host, port, 30)) != MOSQ_ERR_SUCCESS) {
        if (now_ms() > deadline) {
            fprintf(stderr, "mqtt-publisher: cannot connect to %s:%d: %s\n", host, port,
                    mosquitto_strerror(opt));
            goto out;
        }
        usleep(200 * 1000);
    }
    say_ready();
    if (mosquitto_publish(mosq, &published_mid, topic, (int)strlen(message), message, 1, retain) !=
        MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "mqtt-publisher: the publish failed\n");
        goto out;
    }
    while (!published && now_ms() < deadline) {
        opt = mosquitto_loop(mosq, 500, 1);
        if (opt != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "mqtt-publisher: the connection failed: %s\n", mosquitto_strerror(opt));
            goto out;
        }
    }
    if (!published) {
        fprintf(stderr, "mqtt-publisher: the broker did not acknowledge in time\n");
        goto out;
    }
    printf("published to %s\n", topic);
    mosquitto_disconnect(mosq);
    rc = 0;
out:
    if (mosq != NULL)
        mosquitto_destroy(mosq);
    if (lib_init)
        mosquitto_lib_cleanup();
    SSL_CTX_free(ctx);
    rp_app_client_close(&client);
    return rc;
}
