#!/usr/bin/env bash
# A pool of $MEMBERS members (default 5,000), each with its own 1 s HTTP
# check (issue 12): hadns's CPU (share of one core over $CPU_SECONDS) and
# memory while every check passes, and how long answers take to follow a
# health change: the HTTP server stops (every member down: NODATA, with
# when_all_down = "none") and starts again (members back in the answers).
#
#   sudo bench/checks-bench.sh            MEMBERS=5000 INTERVAL=1s CPU_SECONDS=20
#
# Everything runs in a network namespace made for the run (hadns, nginx,
# dig): the members are 127.20.x.y addresses on its loopback, and the
# probes never leave it. Needs root; installs nginx-light and dig if missing
# (through scripts/install-deps.sh: daemons never autostart).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib.sh
source "$ROOT/bench/lib.sh"
# shellcheck source=../scripts/lab.sh
source "$ROOT/scripts/lab.sh"

MEMBERS=${MEMBERS:-5000}
INTERVAL=${INTERVAL:-1s}
CPU_SECONDS=${CPU_SECONDS:-20}
HADNS=${HADNS:-$ROOT/target/release/hadns}
NS=hadns-ck$$

[ "$(id -u)" = 0 ] || die "needs root (network namespace)"
bench_tools nginx:nginx-light dig:bind9-dnsutils
[ -x "$HADNS" ] || (cd "$ROOT" && cargo build --release -p hadns --bin hadns)
bench_tmp
cleanup() {
    lab_down 1000 "$NS" 2>/dev/null || true
    bench_cleanup
}
trap cleanup EXIT

ip netns add "$NS"
ip -n "$NS" link set lo up
in_ns() { ip netns exec "$NS" "$@"; }

mkdir -p "$TMP/nginx"
cat >"$TMP/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx;
    proxy_temp_path $TMP/nginx;
    fastcgi_temp_path $TMP/nginx;
    uwsgi_temp_path $TMP/nginx;
    scgi_temp_path $TMP/nginx;
    server { listen 8080; location / { return 200 "ok\n"; } }
}
EOF
NGINX=
start_nginx() {
    ip netns exec "$NS" nginx -c "$TMP/nginx.conf" &
    NGINX=$!
    lab_wait_until 10 "nginx in $NS" in_ns bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080'
}
stop_nginx() {
    kill "$NGINX" 2>/dev/null || true
    wait "$NGINX" 2>/dev/null || true
}

{
    cat <<EOF
[dns]
listen = ["127.0.0.1:53"]
zones = "$TMP/zones"

[control]
enabled = false

[rrl]
enabled = false

[check.web]
type = "http"
port = 8080
path = "/"
expect_status = 200
interval = "$INTERVAL"
timeout = "500ms"
rise = 1
fall = 1

[[pool]]
name = "ha.com."
type = "A"
mode = "weighted"
answers = 2
when_all_down = "none"
ttl = 10
members = [
EOF
    for ((i = 0; i < MEMBERS; i++)); do
        printf '  { address = "127.20.%d.%d", check = "web" },\n' $((i / 250)) $((i % 250 + 1))
    done
    echo "]"
} >"$TMP/hadns.toml"
"$HADNS" check --config "$TMP/hadns.toml" >/dev/null || die "the config does not check"

start_nginx
ip netns exec "$NS" env RUST_LOG=${RUST_LOG:-warn} "$HADNS" run --config "$TMP/hadns.toml" >"$TMP/hadns.log" 2>&1 &
HPID=$!
PIDS+=("$HPID")
answer() { in_ns dig +time=1 +tries=1 @127.0.0.1 ha.com A 2>/dev/null || true; }
has_members() { answer | grep -q '^ha\.com\..*IN[[:space:]]*A[[:space:]]*127\.20\.'; }
is_nodata() { answer | grep -q 'status: NOERROR.*' && ! has_members; }
lab_wait_until 60 "hadns answers with members" has_members || { cat "$TMP/hadns.log" >&2; exit 1; }
# Let the first round of probes settle, then measure.
sleep 3
ticks() { awk '{print $14 + $15}' "/proc/$HPID/stat"; }
uticks() { awk '{print $14}' "/proc/$HPID/stat"; }
hz=$(getconf CLK_TCK)
u0=$(uticks)
t0=$(ticks)
if [ -n "${PERF:-}" ]; then
    # PERF=FILE: a CPU profile of the measured window (perf report -i FILE)
    perf record -q -g -o "$PERF" -p "$HPID" -- sleep "$CPU_SECONDS" 2>/dev/null
else
    sleep "$CPU_SECONDS"
fi
t1=$(ticks)
u1=$(uticks)
rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$HPID/status")
threads=$(awk '/^Threads:/ {print $2}' "/proc/$HPID/status")
cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" -v s="$CPU_SECONDS" 'BEGIN {printf "%.1f", 100 * (b - a) / hz / s}')
ucpu=$(awk -v a="$u0" -v b="$u1" -v hz="$hz" -v s="$CPU_SECONDS" 'BEGIN {printf "%.1f", 100 * (b - a) / hz / s}')

# A member that went down while every check passes is a false alarm (a
# burst of probes overflowing the server's accept queue, say).
flaps=$(grep -c "health check down" "$TMP/hadns.log" || true)

# Health changes: every check fails at once, then passes again.
stop_nginx
s=$(lab_now_ms)
lab_wait_until 30 "answers without the members" is_nodata || { answer >&2; for p in $(ip netns pids "$NS"); do cat /proc/$p/cmdline | tr "\0" " " >&2; echo >&2; done; tail -5 "$TMP/hadns.log" >&2; exit 1; }
down_ms=$(($(lab_now_ms) - s))
start_nginx
s=$(lab_now_ms)
lab_wait_until 30 "answers with the members again" has_members
up_ms=$(($(lab_now_ms) - s))

printf '\n%d members, each its own http check every %s (rise = fall = 1), load average before: %s\n' \
    "$MEMBERS" "$INTERVAL" "$(cut -d' ' -f1-3 /proc/loadavg)"
# On loopback the kernel runs both ends of every TCP handshake in the
# prober's system calls: the system share counts nginx's side too.
printf '  %-34s %s %% (user %s %%, the rest in the kernel: TCP for both ends on loopback)\n' \
    "CPU while all pass (share of a core)" "$cpu" "$ucpu"
printf '  %-34s %s MB (%s threads)\n' "resident memory" $((rss / 1024)) "$threads"
printf '  %-34s %s\n' "members marked down while all pass" "$flaps"
printf '  %-34s %s ms\n' "all down -> answers NODATA" "$down_ms"
printf '  %-34s %s ms\n' "all up -> answers have members" "$up_ms"
