#!/usr/bin/env bash
# bench/update: many devices download one image at once from rampart-server (the device endpoint:
# mutual TLS with each device's certificate, as rampart-agent fetches it), and the same file from
# nginx on the same machine in the same run (TLS, the same client certificates required, the
# same client: one curl driving all transfers at once). Prints the aggregate throughput of each
# and their ratio; then the size of a delta for a 1% change of the image, as a fraction of it,
# measured through the product's own path (a device that runs v1 checks for v2).
# Usage: bench/update.sh BIN_DIR [--devices N] [--mib M] [--rounds R]
set -euo pipefail
bin=$(cd "${1:?usage: bench/update.sh BIN_DIR}" && pwd)
shift
devices=32 mib=16 rounds=3
while [ $# -gt 0 ]; do
  case $1 in
    --devices) devices=$2; shift 2 ;;
    --mib) mib=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) echo "bench/update: unknown option $1" >&2; exit 2 ;;
  esac
done
command -v nginx >/dev/null || { echo "bench/update: nginx is missing (scripts/install-deps)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/rampart-bench-update.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
rampart=$bin/rampart agent=$bin/rampart-agent
quiet() { "$@" >/dev/null 2>&1; }

# The service, a tenant, keys, the root, the image and a product.
"$bin/rampart-server" --data-dir "$work/srv" --listen 127.0.0.1:0 --port-file "$work/port" \
  --max-connections-per-address 1000000 >"$work/srv.log" 2>&1 &
pids+=("$!")
for _ in $(seq 1 600); do [ -s "$work/port" ] && break; sleep 0.1; done
export RAMPART_SERVER="https://127.0.0.1:$(cat "$work/port")"
export RAMPART_CA_FILE=$work/srv/server-ca.pem RAMPART_TOKEN_FILE=$work/srv/admin.token
tenant=$("$rampart" tenant create bench)
# the devices run nothing when they first attest, on a machine that may lack kernel lockdown
quiet "$rampart" tenant policy --tenant "$tenant" --allow-debug yes --require-components no
quiet "$rampart" key generate --type ecdsa-p256 --out "$work/img.key"
quiet "$rampart" key public --key "$work/img.key" --out "$work/img.pub"
quiet "$rampart" key generate --type ecdsa-p256 --out "$work/root.key"
quiet "$rampart" image-key add --tenant "$tenant" --key "$work/img.pub" --name bench
quiet "$rampart" update-root sign --tenant "$tenant" --root-key "$work/root.key" --out "$work/root.json"
head -c $((mib * 1024 * 1024)) /dev/urandom >"$work/v1.bin"
quiet "$rampart" image sign --key "$work/img.key" --version 1.0.0 --type system "$work/v1.bin" "$work/v1.img"
v1=$("$rampart" image upload --tenant "$tenant" --component system "$work/v1.img" 2>/dev/null)
quiet "$rampart" product create --tenant "$tenant" Bench

# Devices, each with its own certificate (soft root of trust: the key file is usable by curl).
ids=()
for i in $(seq 1 "$devices"); do
  ids+=("$("$agent" provision --state-dir "$work/d$i" --rot soft 2>/dev/null)")
done
quiet "$rampart" device claim --tenant "$tenant" "${ids[@]}"
quiet "$rampart" device assign --tenant "$tenant" --product Bench --group "Field Test" "${ids[@]}"
for i in $(seq 1 "$devices"); do
  quiet "$agent" attest --state-dir "$work/d$i" --server "$RAMPART_SERVER" --server-ca "$RAMPART_CA_FILE"
done
"$rampart" ca download --tenant "$tenant" --out "$work/tenant-ca.pem" >/dev/null
# A device fetches only the images its targets name: v1 is deployed to them all.
quiet "$rampart" deployment create --tenant "$tenant" --product Bench --group "Field Test" "$v1"

# nginx on loopback: the same file, TLS with the service's certificate, client certificates from
# the tenant CA required, as the service requires them.
mkdir -p "$work/www"
cp "$work/srv/images/$v1" "$work/www/image"
nport=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/nginx.conf" <<EOF
user root;
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx.err;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  client_body_temp_path $work/tmp;
  proxy_temp_path $work/tmp;
  fastcgi_temp_path $work/tmp;
  uwsgi_temp_path $work/tmp;
  scgi_temp_path $work/tmp;
  server {
    listen 127.0.0.1:$nport ssl;
    ssl_certificate $work/srv/server.pem;
    ssl_certificate_key $work/srv/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_client_certificate $work/tenant-ca.pem;
    ssl_verify_client on;
    root $work/www;
  }
}
EOF
mkdir -p "$work/tmp"
nginx -c "$work/nginx.conf" -p "$work" 2>"$work/nginx.start" || { cat "$work/nginx.start" >&2; exit 1; }
for _ in $(seq 1 600); do (exec 3<>"/dev/tcp/127.0.0.1/$nport") 2>/dev/null && break; sleep 0.1; done

# One curl drives every device's transfer at once. Prints MB/s over the whole round.
download() { # URL
  local cfg=$work/curl.cfg t0 t1 bytes i
  : >"$cfg"
  for i in $(seq 1 "$devices"); do
    [ "$i" -gt 1 ] && echo next >>"$cfg"
    printf 'url = "%s"\noutput = "/dev/null"\nwrite-out = "%%{size_download}\\n"\ncacert = "%s"\ncert = "%s"\nkey = "%s"\n' "$1" \
      "$RAMPART_CA_FILE" "$work/d$i/agent/device.crt" "$work/d$i/identity.pem" >>"$cfg"
  done
  t0=$(date +%s.%N)
  bytes=$(curl -s --no-progress-meter --parallel --parallel-max "$devices" -K "$cfg" |
    awk '{s += $1} END {print s}')
  t1=$(date +%s.%N)
  if [ "$bytes" -ne $((devices * $(stat -c %s "$work/v1.img"))) ]; then
    echo "bench/update: $1: $bytes bytes arrived, not all of them; one answer:" >&2
    curl -s --cacert "$RAMPART_CA_FILE" --cert "$work/d1/agent/device.crt" --key "$work/d1/identity.pem" \
      "$1" | head -c 300 >&2
    exit 1
  fi
  awk -v b="$bytes" -v t0="$t0" -v t1="$t1" 'BEGIN {printf "%.1f", b / (t1 - t0) / 1e6}'
}

echo "update: $devices devices download one $mib MiB image at once; $rounds rounds, best of each"
best_r=0 best_n=0
for r in $(seq 1 "$rounds"); do
  n=$(download "https://127.0.0.1:$nport/image")
  s=$(download "$RAMPART_SERVER/api/v1/device/images/$v1")
  echo "  round $r: nginx $n MB/s, rampart-server $s MB/s"
  best_n=$(awk -v a="$best_n" -v b="$n" 'BEGIN {print (b > a ? b : a)}')
  best_r=$(awk -v a="$best_r" -v b="$s" 'BEGIN {print (b > a ? b : a)}')
done
ratio=$(awk -v a="$best_r" -v b="$best_n" 'BEGIN {printf "%.2f", a / b}')
echo "  throughput: rampart-server $best_r MB/s, nginx $best_n MB/s; ratio $ratio (target >= 0.8)"

# A delta for a 1% change, the way a device gets it: d1 runs v1, the service learns it at
# attestation, v2 is deployed, d1 checks: the image bytes sent are the delta's.
cp "$work/v1.bin" "$work/v2.bin"
size=$(stat -c %s "$work/v1.bin") runs=100
run=$((size / 100 / runs))
for k in $(seq 0 $((runs - 1))); do
  head -c "$run" /dev/urandom | dd of="$work/v2.bin" bs=1 seek=$((k * (size / runs) + 13)) conv=notrunc status=none
done
quiet "$rampart" image sign --key "$work/img.key" --version 1.1.0 --type system "$work/v2.bin" "$work/v2.img"
v2=$("$rampart" image upload --tenant "$tenant" --component system "$work/v2.img" 2>/dev/null)
quiet "$agent" trust --state-dir "$work/d1" --update-root "$work/root.json"
quiet "$agent" check-now --state-dir "$work/d1"
quiet "$agent" attest --state-dir "$work/d1" --server "$RAMPART_SERVER" --server-ca "$RAMPART_CA_FILE"
quiet "$rampart" deployment create --tenant "$tenant" --product Bench --group "Field Test" "$v2"
sent() { curl -s --cacert "$RAMPART_CA_FILE" "$RAMPART_SERVER/metrics" | sed -n 's/^rampart_image_bytes_sent_total //p'; }
before=$(sent)
quiet "$agent" check-now --state-dir "$work/d1"
delta=$(( $(sent) - before )) full=$(stat -c %s "$work/v2.img")
"$agent" status --state-dir "$work/d1" --output json 2>/dev/null | grep -q '"1.1.0+0"' ||
  { echo "bench/update: the device did not install v2" >&2; exit 1; }
frac=$(awk -v a="$delta" -v b="$full" 'BEGIN {printf "%.4f", a / b}')
echo "  delta for a 1% change: $delta of $full bytes; fraction $frac (target <= 0.05)"
echo "update: ratio to nginx $ratio; delta fraction $frac"
