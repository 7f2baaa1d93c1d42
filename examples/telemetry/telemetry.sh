#!/bin/sh
# telemetry: a sample Rampart app (app A of `make demo`). Every 10 s it asks the sensor app for a
# reading over an app-to-app channel, and publishes it to an MQTT broker over mutual TLS with the
# device identity (mqtt-publisher: the monitor signs its handshake; the app never holds the key).
# It says "ready" once its first reading is published (not when mqtt-publisher has connected).
# Usage (its manifest's Cmdline): telemetry.sh BROKER PORT TOPIC
broker=$1 port=$2 topic=$3
ready=$RAMPART_READY_FD
unset RAMPART_READY_FD
while :; do
  if reading=$(/app/app-ask sensor "reading?"); then
    echo "telemetry: the sensor app answered: $reading"
    if /app/mqtt-publisher --host "$broker" --port "$port" --cafile /app/broker-ca.pem \
      --topic "$topic" --message "$reading" --retain --wait-ms 10000 && [ -n "$ready" ]; then
      echo ready >&"$ready"
      ready=
    fi
  fi
  sleep 10
done
