/*
 * The app manifest (lib/src/manifest.c): a full manifest parses to exactly what it says, absent
 * keys get their defaults, and every rule refuses what breaks it with a message naming the key
 * (one big table of bad manifests, each a good one with one key changed, and the expected
 * fragment of the message). What rp_manifest_to_json() writes parses back to the same manifest,
 * and the binary form the monitor takes (rp_manifest_decode) holds every field to the same rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "rampart/manifest.h"

static const char full[] =
    "{\"SchemaVersion\": 1, \"Name\": \"Sensor app\", \"ComponentId\": \"sensor\","
    " \"EntryPoint\": \"bin/sensor\", \"Cmdline\": [\"--verbose\", \"\"],"
    " \"AllowedConnections\": [\"Broker.Example.com:8883\", \"10.0.0.7\", \"[fd00::1]:443\","
    "   \"[fd00:0:0::2]\", \"[::ffff:10.1.2.3]\", \"xn--bcher-kva.example\", \"1.2.3.4:1\"],"
    " \"AllowedTcpServerPorts\": [8080, 1], \"AllowedUdpServerPorts\": [5683, 65535],"
    " \"Devices\": [\"/dev/ttyS1\", \"/dev/gpiochip0\", \"/dev/bus/usb/001\"],"
    " \"MutableStorage\": {\"SizeKB\": 1024}, \"Memory\": {\"LimitKB\": 65536},"
    " \"Pids\": {\"Max\": 16}, \"CpuPercent\": 50,"
    " \"AllowedApplicationConnections\": [\"logger\", \"db.v2\"],"
    " \"DeviceAuthentication\": true, \"WatchdogSeconds\": 30}";

static const char minimal[] =
    "{\"SchemaVersion\": 1, \"Name\": \"m\", \"ComponentId\": \"m\", \"EntryPoint\": \"m\"}";

static void test_full(void **state)
{
    rp_manifest_t m;
    char why[256];

    (void)state;
    assert_int_equal(rp_manifest_parse(full, strlen(full), &m, why, sizeof(why)), RP_OK);
    assert_false(m.legacy);
    assert_string_equal(m.name, "Sensor app");
    assert_string_equal(m.component_id, "sensor");
    assert_string_equal(m.entry_point, "bin/sensor");
    assert_int_equal(m.nargs, 2);
    assert_string_equal(m.args[0], "--verbose");
    assert_string_equal(m.args[1], "");
    assert_int_equal(m.nconnections, 7);
    assert_string_equal(m.connections[0].host, "broker.example.com"); /* lower-cased */
    assert_false(m.connections[0].is_ip);
    assert_int_equal(m.connections[0].port, 8883);
    assert_string_equal(m.connections[1].host, "10.0.0.7");
    assert_true(m.connections[1].is_ip);
    assert_int_equal(m.connections[1].port, 0);
    assert_string_equal(m.connections[2].host, "fd00::1");
    assert_true(m.connections[2].is_ip);
    assert_int_equal(m.connections[2].port, 443);
    assert_string_equal(m.connections[3].host, "fd00::2"); /* canonical text */
    assert_int_equal(m.connections[3].port, 0);
    assert_string_equal(m.connections[4].host, "::ffff:10.1.2.3");
    assert_string_equal(m.connections[5].host, "xn--bcher-kva.example");
    assert_int_equal(m.connections[6].port, 1);
    assert_int_equal(m.ntcp_ports, 2);
    assert_int_equal(m.tcp_ports[0], 8080);
    assert_int_equal(m.nudp_ports, 2);
    assert_int_equal(m.udp_ports[1], 65535);
    assert_int_equal(m.ndevices, 3);
    assert_string_equal(m.devices[2], "/dev/bus/usb/001");
    assert_int_equal(m.storage_kb, 1024);
    assert_int_equal(m.memory_kb, 65536);
    assert_int_equal(m.pids, 16);
    assert_int_equal(m.cpu_percent, 50);
    assert_int_equal(m.napp_connections, 2);
    assert_string_equal(m.app_connections[1], "db.v2");
    assert_true(m.device_authentication);
    assert_int_equal(m.watchdog_seconds, 30);
}

static void test_defaults(void **state)
{
    rp_manifest_t m;
    char why[256];

    (void)state;
    assert_int_equal(rp_manifest_parse(minimal, strlen(minimal), &m, why, sizeof(why)), RP_OK);
    assert_int_equal(m.nargs + m.nconnections + m.ntcp_ports + m.nudp_ports + m.ndevices +
                         m.napp_connections,
                     0);
    assert_int_equal(m.storage_kb, 0);
    assert_int_equal(m.memory_kb, RP_MANIFEST_MEMORY_KB_DEFAULT);
    assert_int_equal(m.pids, RP_MANIFEST_PIDS_DEFAULT);
    assert_int_equal(m.cpu_percent, RP_MANIFEST_CPU_PERCENT_DEFAULT);
    assert_false(m.device_authentication);
    assert_int_equal(m.watchdog_seconds, 0); /* no watchdog unless asked for */
    assert_false(m.legacy);
}

static void test_legacy(void **state)
{
    rp_manifest_t m;

    (void)state;
    memset(&m, 0xa5, sizeof(m));
    rp_manifest_legacy(&m, "app", "payload");
    assert_true(m.legacy);
    assert_string_equal(m.component_id, "app");
    assert_string_equal(m.entry_point, "payload");
    assert_int_equal(m.nargs + m.nconnections + m.ntcp_ports + m.nudp_ports + m.ndevices +
                         m.napp_connections,
                     0);
    assert_int_equal(m.storage_kb, 0);
    assert_false(m.device_authentication);
    assert_int_equal(m.memory_kb, RP_MANIFEST_MEMORY_KB_DEFAULT);
    assert_int_equal(m.pids, RP_MANIFEST_PIDS_DEFAULT);
    assert_int_equal(m.watchdog_seconds, 0);
}

/* One bad manifest: the full one with key set to value (JSON text), or removed (value NULL). */
struct bad {
    const char *key;
    const char *value;
    const char *fragment;
};

static const struct bad bad[] = {
  /* unknown keys, at every level */
    {"Capabilities",                  "{}",                                                                    "Capabilities: unknown key"                                  },
    {"name",                          "\"x\"",                                                                 "name: unknown key"                                          },
    {"MutableStorage",                "{\"SizKB\": 10}",                                                       "MutableStorage.SizKB: unknown key"                          },
    {"MutableStorage",                "{\"SizeKB\": 10, \"Path\": \"/x\"}",                                    "MutableStorage.Path: unknown key"                           },
    {"Memory",                        "{\"LimitKb\": 2048}",                                                   "Memory.LimitKb: unknown key"                                },
    {"Pids",                          "{\"max\": 2}",                                                          "Pids.max: unknown key"                                      },
 /* required keys */
    {"SchemaVersion",                 NULL,                                                                    "SchemaVersion: required"                                    },
    {"Name",                          NULL,                                                                    "Name: required"                                             },
    {"ComponentId",                   NULL,                                                                    "ComponentId: required"                                      },
    {"EntryPoint",                    NULL,                                                                    "EntryPoint: required"                                       },
    {"MutableStorage",                "{}",                                                                    "MutableStorage.SizeKB: required"                            },
    {"Memory",                        "{}",                                                                    "Memory.LimitKB: required"                                   },
 /* SchemaVersion */
    {"SchemaVersion",                 "2",                                                                     "SchemaVersion: 2 is not supported"                          },
    {"SchemaVersion",                 "\"1\"",                                                                 "SchemaVersion: must be an integer"                          },
    {"SchemaVersion",                 "1.0",                                                                   "not a number with a fraction"                               },
    {"SchemaVersion",                 "-1",                                                                    "SchemaVersion: -1 is under the minimum"                     },
 /* Name */
    {"Name",                          "\"\"",                                                                  "Name: empty"                                                },
    {"Name",                          "7",                                                                     "Name: must be a string, not an integer"                     },
    {"Name",                          "\"tab\\there\"",                                                        "Name: only printable ASCII"                                 },
    {"Name",                          "\"caf\\u00e9\"",                                                        "Name: only printable ASCII"                                 },
    {"Name",                          "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"",
     "Name: 65 bytes long, over the limit of 64"                                                                                                                            },
 /* ComponentId: the one rule */
    {"ComponentId",                   "\".hidden\"",                                                           "ComponentId: \".hidden\" is not a component name"           },
    {"ComponentId",                   "\"a/b\"",                                                               "is not a component name"                                    },
    {"ComponentId",                   "\"\"",                                                                  "is not a component name"                                    },
    {"ComponentId",                   "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"",
     "ComponentId: 33 bytes long, over the limit of 32"                                                                                                                     },
    {"ComponentId",                   "null",                                                                  "ComponentId: must be a string, not null"                    },
 /* EntryPoint */
    {"EntryPoint",                    "\"/bin/sh\"",                                                           "EntryPoint: \"/bin/sh\" is not a clean relative path"       },
    {"EntryPoint",                    "\"../x\"",                                                              "EntryPoint: \"../x\" is not a clean"                        },
    {"EntryPoint",                    "\"bin/../../x\"",                                                       "is not a clean relative path"                               },
    {"EntryPoint",                    "\"bin/..\"",                                                            "is not a clean relative path"                               },
    {"EntryPoint",                    "\"bin//x\"",                                                            "is not a clean relative path"                               },
    {"EntryPoint",                    "\"./x\"",                                                               "is not a clean relative path"                               },
    {"EntryPoint",                    "\"bin/\"",                                                              "is not a clean relative path"                               },
    {"EntryPoint",                    "\"\"",                                                                  "is not a clean relative path"                               },
    {"EntryPoint",                    "\"a\\nb\"",                                                             "is not a clean relative path"                               },
    {"EntryPoint",                    "\"a\\u0000b\"",                                                         "NUL"                                                        },
    {"EntryPoint",                    "[\"bin/x\"]",                                                           "EntryPoint: must be a string, not an array"                 },
 /* Cmdline */
    {"Cmdline",                       "\"--verbose\"",                                                         "Cmdline: must be an array, not a string"                    },
    {"Cmdline",                       "[1]",                                                                   "Cmdline[0]: must be a string, not an integer"               },
    {"Cmdline",
     "[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\",\"12\",\"13\",\"14\","
     "\"15\",\"16\",\"17\"]",                                                                                  "Cmdline: 17 entries, over the limit of 16"                  },
 /* AllowedConnections */
    {"AllowedConnections",            "[\"*.example.com\"]",
     "AllowedConnections[0]: \"*.example.com\": wildcards"                                                                                                                  },
    {"AllowedConnections",            "[\"*\"]",                                                               "wildcards are not allowed"                                  },
    {"AllowedConnections",            "[\"ok.example\", \"0.0.0.0\"]",
     "AllowedConnections[1]: \"0.0.0.0\": the unspecified"                                                                                                                  },
    {"AllowedConnections",            "[\"[::]\"]",                                                            "the unspecified address"                                    },
    {"AllowedConnections",            "[\"fd00::1\"]",                                                         "write an IPv6 address in brackets"                          },
    {"AllowedConnections",            "[\"a.example:0\"]",                                                     "the port must be 1 to 65535"                                },
    {"AllowedConnections",            "[\"a.example:65536\"]",                                                 "the port must be 1 to 65535"                                },
    {"AllowedConnections",            "[\"a.example:080\"]",                                                   "the port must be 1 to 65535"                                },
    {"AllowedConnections",            "[\"a.example:\"]",                                                      "the port must be 1 to 65535"                                },
    {"AllowedConnections",            "[\"a.example:+80\"]",                                                   "the port must be 1 to 65535"                                },
    {"AllowedConnections",            "[\":80\"]",                                                             "not a host name"                                            },
    {"AllowedConnections",            "[\"-bad.example\"]",                                                    "not a host name"                                            },
    {"AllowedConnections",            "[\"bad-.example\"]",                                                    "not a host name"                                            },
    {"AllowedConnections",            "[\"a..example\"]",                                                      "not a host name"                                            },
    {"AllowedConnections",            "[\"example.com.\"]",                                                    "not a host name"                                            },
    {"AllowedConnections",            "[\"under_score.example\"]",                                             "not a host name"                                            },
    {"AllowedConnections",            "[\"b\\u00fccher.example\"]",                                            "not a host name"                                            },
    {"AllowedConnections",            "[\"10.1\"]",                                                            "not a host name"                                            },
    {"AllowedConnections",            "[\"010.0.0.1\"]",                                                       "not a host name"                                            },
    {"AllowedConnections",            "[\"256.1.1.1\"]",                                                       "not a host name"                                            },
    {"AllowedConnections",            "[\"fd00::1:443\"]",
     "AllowedConnections[0]: \"fd00::1:443\": write an IPv6 address in brackets"                                                                                            },
    {"AllowedConnections",            "[\"[fe80::1%eth0]\"]",                                                  "not an IPv6 address"                                        },
    {"AllowedConnections",            "[\"[fd00::1\"]",                                                        "no ] closes the IPv6 address"                               },
    {"AllowedConnections",            "[\"[fd00::1]443\"]",                                                    "after ] comes nothing or :PORT"                             },
    {"AllowedConnections",            "[\"[fd00::1]:0\"]",                                                     "after ] comes nothing or :PORT"                             },
    {"AllowedConnections",            "[\"[10.0.0.1]:80\"]",                                                   "not an IPv6 address"                                        },
    {"AllowedConnections",            "[\"[]\"]",                                                              "not an IPv6 address"                                        },
    {"AllowedConnections",            "[\"\"]",                                                                "AllowedConnections[0]: empty"                               },
    {"AllowedConnections",            "[\"a.example\", \"A.EXAMPLE\"]",
     "AllowedConnections[1]: \"A.EXAMPLE\" is listed twice"                                                                                                                 },
    {"AllowedConnections",            "[\"[fd00::1]:443\", \"[fd00:0::1]:443\"]",                              "is listed twice"                                            },
    {"AllowedConnections",            "[7]",                                                                   "AllowedConnections[0]: must be a string"                    },
    {"AllowedConnections",            "{\"host\": \"a\"}",
     "AllowedConnections: must be an array, not an object"                                                                                                                  },
    {"AllowedConnections",
     "[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example\"]",                         "not a host name"                                            },
 /* ports */
    {"AllowedTcpServerPorts",         "[0]",                                                                   "AllowedTcpServerPorts[0]: 0 is under the minimum of 1"      },
    {"AllowedTcpServerPorts",         "[65536]",
     "AllowedTcpServerPorts[0]: 65536 is over the limit of 65535"                                                                                                           },
    {"AllowedTcpServerPorts",         "[80, 80]",                                                              "AllowedTcpServerPorts[1]: port 80 is listed twice"          },
    {"AllowedTcpServerPorts",         "[\"80\"]",                                                              "AllowedTcpServerPorts[0]: must be an integer"               },
    {"AllowedUdpServerPorts",         "[-53]",                                                                 "AllowedUdpServerPorts[0]: -53 is under the minimum"         },
    {"AllowedUdpServerPorts",         "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]",
     "AllowedUdpServerPorts: 17 entries, over the limit of 16"                                                                                                              },
    {"AllowedUdpServerPorts",         "80",                                                                    "AllowedUdpServerPorts: must be an array"                    },
 /* Devices */
    {"Devices",                       "[\"/etc/passwd\"]",                                                     "Devices[0]: \"/etc/passwd\" is not a device node's path"    },
    {"Devices",                       "[\"/dev/../etc/shadow\"]",                                              "is not a device node's path"                                },
    {"Devices",                       "[\"/dev/\"]",                                                           "is not a device node's path"                                },
    {"Devices",                       "[\"/dev\"]",                                                            "is not a device node's path"                                },
    {"Devices",                       "[\"dev/ttyS1\"]",                                                       "is not a device node's path"                                },
    {"Devices",                       "[\"/dev//ttyS1\"]",                                                     "is not a device node's path"                                },
    {"Devices",                       "[\"/dev/ttyS1/\"]",                                                     "is not a device node's path"                                },
    {"Devices",                       "[\"/dev/./mem\"]",                                                      "is not a device node's path"                                },
    {"Devices",                       "[\"/dev/ttyS1\", \"/dev/ttyS1\"]",                                      "Devices[1]: \"/dev/ttyS1\" is listed twice"                 },
    {"Devices",
     "[\"/dev/a\",\"/dev/b\",\"/dev/c\",\"/dev/d\",\"/dev/e\",\"/dev/f\",\"/dev/g\",\"/dev/h\","
     "\"/dev/i\"]",                                                                                            "Devices: 9 entries, over the limit of 8"                    },
 /* limits */
    {"MutableStorage",                "{\"SizeKB\": 0}",                                                       "MutableStorage.SizeKB: 0 is under the minimum of 1"         },
    {"MutableStorage",                "{\"SizeKB\": 1048577}",
     "MutableStorage.SizeKB: 1048577 is over the limit of 1048576"                                                                                                          },
    {"MutableStorage",                "1024",                                                                  "MutableStorage: must be an object"                          },
    {"Memory",                        "{\"LimitKB\": 9000000}",                                                "Memory.LimitKB: 9000000 is over the limit of 4194304"       },
    {"Memory",                        "{\"LimitKB\": 1023}",                                                   "Memory.LimitKB: 1023 is under the minimum of 1024"          },
    {"Memory",                        "{\"LimitKB\": 99999999999999999999}",                                   "not valid JSON"                                             },
    {"Memory",                        "{\"LimitKB\": 4096.5}",                                                 "Memory.LimitKB: must be an integer"                         },
    {"Pids",                          "{\"Max\": 0}",                                                          "Pids.Max: 0 is under the minimum of 1"                      },
    {"Pids",                          "{\"Max\": 4097}",                                                       "Pids.Max: 4097 is over the limit of 4096"                   },
    {"CpuPercent",                    "0",                                                                     "CpuPercent: 0 is under the minimum of 1"                    },
    {"CpuPercent",                    "101",                                                                   "CpuPercent: 101 is over the limit of 100"                   },
    {"CpuPercent",                    "true",                                                                  "CpuPercent: must be an integer from 1 to 100, not a boolean"},
 /* app connections */
    {"AllowedApplicationConnections", "[\"sensor\"]",
     "AllowedApplicationConnections[0]: \"sensor\" is this app"                                                                                                             },
    {"AllowedApplicationConnections", "[\"a\", \"a\"]",
     "AllowedApplicationConnections[1]: \"a\" is listed twice"                                                                                                              },
    {"AllowedApplicationConnections", "[\"../x\"]",                                                            "is not a component name"                                    },
    {"AllowedApplicationConnections", "[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\"]",
     "AllowedApplicationConnections: 9 entries, over the limit of 8"                                                                                                        },
 /* DeviceAuthentication */
    {"DeviceAuthentication",          "1",                                                                     "DeviceAuthentication: must be true or false, not an integer"},
    {"DeviceAuthentication",          "\"true\"",                                                              "DeviceAuthentication: must be true or false"                },
    {"DeviceAuthentication",          "null",                                                                  "DeviceAuthentication: must be true or false, not null"      },
 /* WatchdogSeconds */
    {"WatchdogSeconds",               "0",                                                                     "WatchdogSeconds: 0 is under the minimum of 1"               },
    {"WatchdogSeconds",               "3601",                                                                  "WatchdogSeconds: 3601 is over the limit of 3600"            },
    {"WatchdogSeconds",               "-5",                                                                    "WatchdogSeconds: -5 is under the minimum of 1"              },
    {"WatchdogSeconds",               "2.5",
     "WatchdogSeconds: must be an integer from 1 to 3600, not a number with a fraction"                                                                                     },
    {"WatchdogSeconds",               "\"30\"",
     "WatchdogSeconds: must be an integer from 1 to 3600, not a string"                                                                                                     },
    {"Watchdog",                      "30",                                                                    "Watchdog: unknown key"                                      },
};

static void test_bad_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *root = json_loads(full, 0, NULL), *v;
        char why[512], *text;
        rp_manifest_t m;
        rp_err_t err;

        assert_non_null(root);
        if (bad[i].value == NULL) {
            json_object_del(root, bad[i].key);
        } else {
            /* Values that Jansson itself refuses (a number too big) are spliced in as text. */
            v = json_loads(bad[i].value, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
            json_object_set_new(root, bad[i].key, v != NULL ? v : json_string("@@SPLICE@@"));
        }
        text = json_dumps(root, JSON_COMPACT);
        assert_non_null(text);
        if (strstr(text, "\"@@SPLICE@@\"") != NULL) {
            char *spliced = malloc(strlen(text) + strlen(bad[i].value) + 1);
            char *at = strstr(text, "\"@@SPLICE@@\"");
            assert_non_null(spliced);
            sprintf(spliced, "%.*s%s%s", (int)(at - text), text, bad[i].value,
                    at + strlen("\"@@SPLICE@@\""));
            free(text);
            text = spliced;
        }
        memset(&m, 0x5a, sizeof(m));
        err = rp_manifest_parse(text, strlen(text), &m, why, sizeof(why));
        if (err == RP_OK || strstr(why, bad[i].fragment) == NULL)
            fail_msg("case %zu (%s = %s): got %d \"%s\", wanted \"%s\"", i, bad[i].key,
                     bad[i].value != NULL ? bad[i].value : "(removed)", err, why, bad[i].fragment);
        /* Nothing half-filled survives a refusal. */
        assert_int_equal(m.nconnections + m.ndevices + m.nargs, 0);
        assert_false(m.device_authentication);
        assert_string_equal(m.component_id, "");
        free(text);
        json_decref(root);
    }
}

/* Refusals of the whole document rather than of one key. */
static void test_bad_documents(void **state)
{
    static const struct {
        const char *text;
        const char *fragment;
    } docs[] = {
        {"",                                                                                       "not valid JSON"                     },
        {"[]",                                                                                     "must be a JSON object, not an array"},
        {"\"x\"",                                                                                  "not valid JSON"                     },
        {"{\"SchemaVersion\": 1, \"SchemaVersion\": 1}",                                           "duplicate object key"               },
        {"{\"SchemaVersion\": 1, \"Name\": \"m\", \"ComponentId\": \"m\", "
         "\"EntryPoint\": \"m\", \"Memory\": {\"LimitKB\": 2048, \"LimitKB\": 9000000}}", "duplicate object key"               },
        {"{\"SchemaVersion\": 1, \"Name\": \"m\", \"ComponentId\": \"m\", "
         "\"EntryPoint\": \"m\"} trailing",                                               "not valid JSON"                     },
        {"{\"SchemaVersion\": 1, \"Name\": \"m\", \"ComponentId\": \"m\", "
         "\"EntryPoint\": \"m\"",                                                         "not valid JSON"                     },
        {"{\"SchemaVersion\": 1, \"Name\": \"m\", \"ComponentId\": \"m\", "
         "\"EntryPoint\": \"\xff\"}",                                                     "not valid JSON"                     },
    };
    rp_manifest_t m;
    char why[512];

    (void)state;
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        rp_err_t err = rp_manifest_parse(docs[i].text, strlen(docs[i].text), &m, why, sizeof(why));
        if (err == RP_OK || strstr(why, docs[i].fragment) == NULL)
            fail_msg("document %zu: got %d \"%s\", wanted \"%s\"", i, err, why, docs[i].fragment);
    }
    /* A NUL inside the bytes given ends nothing early: the whole length is parsed. */
    {
        static const char nul[] = "{\"SchemaVersion\": 1, \"Name\": \"m\", \"ComponentId\": "
                                  "\"m\", \"EntryPoint\": \"m\"}\0{\"x\":1}";
        assert_int_not_equal(rp_manifest_parse(nul, sizeof(nul) - 1, &m, why, sizeof(why)), RP_OK);
    }
}

static void test_size_limit(void **state)
{
    char *big = malloc(RP_MANIFEST_MAX_BYTES + 2), why[256];
    size_t n = strlen(minimal);
    rp_manifest_t m;

    (void)state;
    assert_non_null(big);
    /* Whitespace pads a valid manifest: one byte over the limit is refused, at it accepted. */
    memcpy(big, minimal, n - 1);
    memset(big + n - 1, ' ', RP_MANIFEST_MAX_BYTES - n);
    big[RP_MANIFEST_MAX_BYTES - 1] = '}';
    assert_int_equal(rp_manifest_parse(big, RP_MANIFEST_MAX_BYTES, &m, why, sizeof(why)), RP_OK);
    memset(big + n - 1, ' ', RP_MANIFEST_MAX_BYTES + 1 - n);
    big[RP_MANIFEST_MAX_BYTES] = '}';
    assert_int_not_equal(rp_manifest_parse(big, RP_MANIFEST_MAX_BYTES + 1, &m, why, sizeof(why)),
                         RP_OK);
    assert_non_null(strstr(why, "over the limit of 65536"));
    free(big);
}

static void test_load(void **state)
{
    char dir[] = "/tmp/test_manifest.XXXXXX", path[64], why[256];
    rp_manifest_t m;
    FILE *f;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/%s", dir, RP_MANIFEST_FILE);
    assert_int_equal(rp_manifest_load(path, &m, why, sizeof(why)), RP_ERR_NOT_FOUND);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(full, f);
    fclose(f);
    assert_int_equal(rp_manifest_load(path, &m, why, sizeof(why)), RP_OK);
    assert_string_equal(m.component_id, "sensor");
    /* Over the limit: refused unread. */
    assert_int_equal(truncate(path, RP_MANIFEST_MAX_BYTES + 1), 0);
    assert_int_equal(rp_manifest_load(path, &m, why, sizeof(why)), RP_ERR_TOO_LARGE);
    assert_non_null(strstr(why, "over the limit"));
    assert_string_equal(m.component_id, "");
    /* Not a regular file. */
    assert_int_not_equal(rp_manifest_load(dir, &m, why, sizeof(why)), RP_OK);
    assert_non_null(strstr(why, "not a regular file"));
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
}

static void test_round_trip(void **state)
{
    rp_manifest_t a, b;
    char why[256], *text;
    json_t *j;

    (void)state;
    assert_int_equal(rp_manifest_parse(full, strlen(full), &a, why, sizeof(why)), RP_OK);
    j = rp_manifest_to_json(&a);
    assert_non_null(j);
    text = json_dumps(j, JSON_COMPACT);
    assert_non_null(text);
    assert_int_equal(rp_manifest_parse(text, strlen(text), &b, why, sizeof(why)), RP_OK);
    assert_memory_equal(&a, &b, sizeof(a));
    free(text);
    json_decref(j);
}

/* The binary form rampart-unpack hands the monitor: what the parser made comes back unchanged;
 * any field that breaks a parser's rule, a bad flag, another length or version is refused. */
static void test_binary_form(void **state)
{
    static uint8_t bin[RP_MANIFEST_BIN_LEN], broken[RP_MANIFEST_BIN_LEN];
    static rp_manifest_t a, b;
    const size_t head = RP_MANIFEST_BIN_LEN - sizeof(rp_manifest_t);
    const struct {
        size_t off;
        uint8_t byte;
        const char *why;
    } breaks[] = {
        {offsetof(rp_manifest_t, name),                    0,    "Name"                            }, /* empty */
        {offsetof(rp_manifest_t, name),                    0x07, "Name"                            },
        {offsetof(rp_manifest_t, component_id),            '.',  "ComponentId"                     },
        {offsetof(rp_manifest_t, entry_point),             '/',  "EntryPoint"                      },
        {offsetof(rp_manifest_t, connections[0].host),     'B',  "AllowedConnections[0]"           },
        {offsetof(rp_manifest_t, connections[1].host),     'x',  "AllowedConnections[1]"           },
        {offsetof(rp_manifest_t, connections[2].host) + 3, ':',  "AllowedConnections[2]"           },
        {offsetof(rp_manifest_t, connections[1].host) + 1, '*',  "AllowedConnections[1]"           },
        {offsetof(rp_manifest_t, tcp_ports[1]),            0,    "server port"                     },
        {offsetof(rp_manifest_t, devices[0]) + 1,          'e',  "Devices[0]"                      },
        {offsetof(rp_manifest_t, devices[0]) + 6,          0xf6, "Devices[0]"                      },
        {offsetof(rp_manifest_t, entry_point) + 2,         0xf6, "EntryPoint"                      }, /* not UTF-8 */
        {offsetof(rp_manifest_t, args[0]) + 2,             0xc3, "Cmdline[0]"                      },
        {offsetof(rp_manifest_t, app_connections[1]),      '.',  "AllowedApplicationConnections[1]"},
        {offsetof(rp_manifest_t, cpu_percent),             101,  "limit"                           },
        {offsetof(rp_manifest_t, device_authentication),   2,    "flag"                            },
        {offsetof(rp_manifest_t, legacy),                  1,    "flag"                            },
        {offsetof(rp_manifest_t, connections[20].is_ip),   7,    "flag"                            },
    };
    char why[256];

    (void)state;
    assert_int_equal(rp_manifest_parse(full, strlen(full), &a, why, sizeof(why)), RP_OK);
    rp_manifest_encode(&a, bin);
    assert_int_equal(rp_manifest_decode(bin, sizeof(bin), &b, why, sizeof(why)), RP_OK);
    assert_memory_equal(&a, &b, sizeof(a));
    assert_int_equal(rp_manifest_check(&a, why, sizeof(why)), RP_OK);
    for (size_t i = 0; i < sizeof(breaks) / sizeof(breaks[0]); i++) {
        memcpy(broken, bin, sizeof(broken));
        broken[head + breaks[i].off] = breaks[i].byte;
        assert_int_equal(rp_manifest_decode(broken, sizeof(broken), &b, why, sizeof(why)),
                         RP_ERR_MALFORMED);
        if (strstr(why, breaks[i].why) == NULL)
            fail_msg("break %zu: \"%s\" does not name %s", i, why, breaks[i].why);
        assert_string_equal(b.component_id, ""); /* nothing half-taken */
    }
    /* Unterminated strings, a count past its array. */
    memcpy(broken, bin, sizeof(broken));
    memset(broken + head + offsetof(rp_manifest_t, args[0]), 'a', RP_MANIFEST_ARG_MAX + 1);
    assert_int_equal(rp_manifest_decode(broken, sizeof(broken), &b, why, sizeof(why)),
                     RP_ERR_MALFORMED);
    memcpy(broken, bin, sizeof(broken));
    memset(broken + head + offsetof(rp_manifest_t, name), 'a', RP_MANIFEST_NAME_MAX + 1);
    assert_int_equal(rp_manifest_decode(broken, sizeof(broken), &b, why, sizeof(why)),
                     RP_ERR_MALFORMED);
    a.ndevices = RP_MANIFEST_DEVICES_MAX + 1;
    rp_manifest_encode(&a, broken);
    assert_int_equal(rp_manifest_decode(broken, sizeof(broken), &b, why, sizeof(why)),
                     RP_ERR_MALFORMED);
    /* Another length, magic or version. */
    assert_int_equal(rp_manifest_decode(bin, sizeof(bin) - 1, &b, why, sizeof(why)),
                     RP_ERR_MALFORMED);
    assert_int_equal(rp_manifest_decode(bin, 0, &b, why, sizeof(why)), RP_ERR_MALFORMED);
    memcpy(broken, bin, sizeof(broken));
    broken[0] = 'X';
    assert_int_equal(rp_manifest_decode(broken, sizeof(broken), &b, why, sizeof(why)),
                     RP_ERR_MALFORMED);
    memcpy(broken, bin, sizeof(broken));
    broken[4] ^= 0x40;
    assert_int_equal(rp_manifest_decode(broken, sizeof(broken), &b, why, sizeof(why)),
                     RP_ERR_MALFORMED);
    assert_non_null(strstr(why, "another version"));
    /* The legacy manifest keeps every rule, but is never a tree's. */
    rp_manifest_legacy(&a, "app", "app");
    assert_int_equal(rp_manifest_check(&a, why, sizeof(why)), RP_OK);
    rp_manifest_encode(&a, bin);
    assert_int_equal(rp_manifest_decode(bin, sizeof(bin), &b, why, sizeof(why)), RP_ERR_MALFORMED);
}

static void test_path_clean(void **state)
{
    static const char *const good[] = {"a", "bin/app", "a.b/c..d/..e/e..", ".hidden/x", "a b"};
    static const char *const badp[] = {"",    "/a",  "a/",     "a//b", ".",    "..",
                                       "./a", "a/.", "a/../b", "a/..", "\x01", "a\x7f"};

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(rp_manifest_path_clean(good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof(badp) / sizeof(badp[0]); i++)
        assert_false(rp_manifest_path_clean(badp[i], strlen(badp[i])));
    assert_false(rp_manifest_path_clean("a\0b", 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),          cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_legacy),        cmocka_unit_test(test_bad_table),
        cmocka_unit_test(test_bad_documents), cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_load),          cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_path_clean),    cmocka_unit_test(test_binary_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
