#!/usr/bin/env bash
# The reference point of BENCHMARKS.md, measured on the same machine as
# qu-jepsen bench: CPU seconds Prometheus' blackbox_exporter (Debian's
# package) spends per 1 000 HTTP probes of a local nginx, at the probe rates
# one qu node runs at 1 000 and 10 000 checks on a 30 s interval (33/s and
# 333/s), driven the way Prometheus drives it (GET /probe per target).
#
# Needs root to install nginx-light and prometheus-blackbox-exporter when
# they are missing. Everything listens on 127.0.0.1 and stops at the end.
set -euo pipefail

need=()
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
command -v prometheus-blackbox-exporter >/dev/null 2>&1 || need+=(prometheus-blackbox-exporter)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    # The packages start system services; this script runs its own copies.
    systemctl stop nginx prometheus-blackbox-exporter >/dev/null 2>&1 || true
  else
    echo "bench-blackbox: missing ${need[*]}: run as root to install them" >&2
    exit 1
  fi
fi

dir=$(mktemp -d /tmp/qu-bench-blackbox-XXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

mkdir -p "$dir/nginx"
cat >"$dir/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $dir/nginx;
  proxy_temp_path $dir/nginx;
  fastcgi_temp_path $dir/nginx;
  uwsgi_temp_path $dir/nginx;
  scgi_temp_path $dir/nginx;
  server { listen 127.0.0.1:18081; location / { return 200 "ok"; } }
}
EOF
nginx -c "$dir/nginx.conf" &
pids+=($!)

cat >"$dir/blackbox.yml" <<EOF
modules:
  http_2xx:
    prober: http
    timeout: 10s
    http:
      preferred_ip_protocol: ip4
EOF
prometheus-blackbox-exporter --config.file="$dir/blackbox.yml" \
  --web.listen-address=127.0.0.1:19115 --log.level=warn >"$dir/blackbox.log" 2>&1 &
bb=$!
pids+=($bb)
for _ in $(seq 50); do
  curl -fsS -o /dev/null "http://127.0.0.1:19115/probe?module=http_2xx&target=http://127.0.0.1:18081/" 2>/dev/null && break
  sleep 0.1
done

echo "blackbox_exporter $(prometheus-blackbox-exporter --version 2>&1 | head -1 | awk '{print $3}') probing nginx on 127.0.0.1, 60 s per rate"
/usr/bin/python3 - "$bb" <<'EOF'
import http.client, sys, threading, time

pid = int(sys.argv[1])
def cpu():
    f = open(f"/proc/{pid}/stat").read()
    f = f[f.rfind(")") + 2:].split()
    return (int(f[11]) + int(f[12])) / 100.0

def drive(rate, secs):
    done = [0, 0]
    lock = threading.Lock()
    def worker(offset, step):
        c = http.client.HTTPConnection("127.0.0.1", 19115, timeout=15)
        start = time.monotonic()
        i = offset
        while True:
            at = start + i / rate
            if at - start >= secs:
                break
            time.sleep(max(0.0, at - time.monotonic()))
            c.request("GET", "/probe?module=http_2xx&target=http://127.0.0.1:18081/")
            body = c.getresponse().read()
            with lock:
                done[0] += 1
                done[1] += b"probe_success 1" in body
            i += step
    n = 8
    ts = [threading.Thread(target=worker, args=(k, n)) for k in range(n)]
    c0 = cpu()
    for t in ts: t.start()
    for t in ts: t.join()
    used = cpu() - c0
    print(f"  {rate:>4}/s: {done[0]} probes ({done[1]} ok), {used:.2f} CPU-s = {used / done[0] * 1000:.2f} CPU-s per 1000 probes")

for rate in (33, 333):
    drive(rate, 60)
EOF
