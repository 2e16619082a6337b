#!/usr/bin/env bash
# dnsperf against hadns, NSD, Knot and gdnsd serving the same zones, side by side.
#
#   bench/dns-bench.sh                       # 3 rounds x 10 s per server
#   DURATION=5 ROUNDS=3 bench/dns-bench.sh   # shorter
#   MODE=tcp bench/dns-bench.sh              # dnsperf -m tcp
#
# Each server runs pinned to CPU $SERVER_CPU (default 1), dnsperf to CPU
# $GEN_CPU (default 0), one server process/worker each (NSD server-count 1,
# Knot udp-workers 1, gdnsd udp_threads 1, hadns as it ships). Rounds are
# interleaved (hadns, NSD, Knot, gdnsd, hadns, ...) so drift on the machine hits every server alike. All
# servers listen on 127.0.0.1 high ports; everything lives in a temp dir and
# every process the script starts is killed by PID on exit.
#
# Query mix (issue 2): 70% ha.com A (the pool), 10% ha1.com A, 10% www.ha.com A
# (CNAME to the pool), 5% nx.ha.com A (NXDOMAIN), 5% ha.com AAAA (NODATA).
# NSD, Knot and gdnsd serve the zone files' static records (ha.com has both A records);
# hadns serves the ha.com pool in equal mode with the same two addresses.
#
# Env: DURATION (s, default 10), ROUNDS (3), CLIENTS (8), OUTSTANDING (200),
#      MODE (udp|tcp), SERVERS ("hadns nsd knot gdnsd"), SERVER_CPU (1), GEN_CPU (0),
#      BASE_PORT (random high port), KEEP_TMP=1 to keep the temp dir,
#      QUIET_WAIT (s, default 0): wait for the machine to go quiet before each
#      measurement. Each round also reports the CPU other processes used
#      meanwhile, so a round spoiled by someone's build can be seen.
set -euo pipefail

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-8}
OUTSTANDING=${OUTSTANDING:-200}
MODE=${MODE:-udp}
SERVERS=${SERVERS:-"hadns nsd knot gdnsd"}
SERVER_CPU=${SERVER_CPU:-1}
GEN_CPU=${GEN_CPU:-0}
BASE_PORT=${BASE_PORT:-$((20000 + RANDOM % 20000))}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ZONES_SRC="$ROOT/zones"

log() { printf '%s\n' "$*" >&2; }
die() { log "dns-bench: $*"; exit 1; }

# --- tools ------------------------------------------------------------------
need_pkgs=()
command -v dnsperf >/dev/null || need_pkgs+=(dnsperf)
command -v nsd >/dev/null || [ -x /usr/sbin/nsd ] || need_pkgs+=(nsd)
command -v knotd >/dev/null || [ -x /usr/sbin/knotd ] || need_pkgs+=(knot)
if [[ " $SERVERS " == *" gdnsd "* ]]; then
    command -v gdnsd >/dev/null || [ -x /usr/sbin/gdnsd ] || need_pkgs+=(gdnsd)
fi
command -v dig >/dev/null || need_pkgs+=(bind9-dnsutils)
command -v taskset >/dev/null || need_pkgs+=(util-linux)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing ${need_pkgs[*]}; run as root to install them"
    # Never let the packages start their daemons (they would take port 53).
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
    fi
    log "installing ${need_pkgs[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi
PATH=$PATH:/usr/sbin
ncpu=$(nproc --all)
[ "$ncpu" -gt "$SERVER_CPU" ] && [ "$ncpu" -gt "$GEN_CPU" ] ||
    die "needs CPUs $GEN_CPU and $SERVER_CPU (have $ncpu); set SERVER_CPU/GEN_CPU"

# --- build --------------------------------------------------------------------
HADNS="$ROOT/target/release/hadns"
if [[ " $SERVERS " == *" hadns "* ]]; then
    log "building hadns (release)"
    (cd "$ROOT" && cargo build --release -q -p hadns) || die "cargo build failed"
fi

# --- temp dir, cleanup ----------------------------------------------------------
TMP=$(mktemp -d /tmp/hadns-bench.XXXXXX)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ "${KEEP_TMP:-0}" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$TMP/zones" "$TMP/nsd" "$TMP/knot/db" "$TMP/gdnsd/zones" "$TMP/gdnsd/run" "$TMP/gdnsd/state"
cp "$ZONES_SRC"/*.zone "$TMP/zones/"

# --- query file -----------------------------------------------------------------
# 1000 lines in a fixed interleaved order (deterministic: same file every run).
QF="$TMP/queries.txt"
awk 'BEGIN {
    srand(42);
    for (i = 0; i < 700; i++) q[n++] = "ha.com A";
    for (i = 0; i < 100; i++) q[n++] = "ha1.com A";
    for (i = 0; i < 100; i++) q[n++] = "www.ha.com A";
    for (i = 0; i < 50; i++)  q[n++] = "nx.ha.com A";
    for (i = 0; i < 50; i++)  q[n++] = "ha.com AAAA";
    for (i = n - 1; i > 0; i--) { j = int(rand() * (i + 1)); t = q[i]; q[i] = q[j]; q[j] = t }
    for (i = 0; i < n; i++) print q[i];
}' >"$QF"

# --- configs --------------------------------------------------------------------
declare -A PORT
p=$BASE_PORT
for s in $SERVERS; do PORT[$s]=$p; p=$((p + 1)); done

zone_names() { for f in "$TMP"/zones/*.zone; do basename "$f" .zone; done; }

if [ -n "${PORT[hadns]:-}" ]; then
    cat >"$TMP/hadns.toml" <<EOF
[dns]
listen = ["127.0.0.1:${PORT[hadns]}"]
zones = "$TMP/zones"

[[pool]]
name = "ha.com."
type = "A"
mode = "equal"
ttl = 10
members = [
  { address = "192.168.56.100" },
  { address = "192.168.56.200" },
]
EOF
fi

if [ -n "${PORT[nsd]:-}" ]; then
    {
        cat <<EOF
server:
    ip-address: 127.0.0.1@${PORT[nsd]}
    port: ${PORT[nsd]}
    do-ip6: no
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "$TMP/zones"
    database: ""
    zonelistfile: "$TMP/nsd/zone.list"
    xfrdfile: "$TMP/nsd/xfrd.state"
    xfrdir: "$TMP/nsd"
    pidfile: "$TMP/nsd/nsd.pid"
    logfile: "$TMP/nsd/nsd.log"
    verbosity: 0
    hide-version: yes
    # Debian's NSD has response rate limiting on (200 qps per /24): off, or
    # a benchmark from one address measures the limiter.
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
EOF
        for z in $(zone_names); do
            printf 'zone:\n    name: %s\n    zonefile: %s.zone\n' "$z" "$z"
        done
    } >"$TMP/nsd/nsd.conf"
fi

if [ -n "${PORT[knot]:-}" ]; then
    {
        cat <<EOF
server:
    rundir: "$TMP/knot"
    pidfile: "$TMP/knot/knot.pid"
    user: root:root
    listen: 127.0.0.1@${PORT[knot]}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
control:
    listen: "$TMP/knot/knot.sock"
database:
    storage: "$TMP/knot/db"
log:
  - target: "$TMP/knot/knot.log"
    any: warning
template:
  - id: default
    storage: "$TMP/zones"
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
zone:
EOF
        for z in $(zone_names); do printf '  - domain: %s\n' "$z"; done
    } >"$TMP/knot/knot.conf"
fi

if [ -n "${PORT[gdnsd]:-}" ]; then
    # gdnsd wants <config dir>/zones/<zone name> files.
    for z in $(zone_names); do cp "$TMP/zones/$z.zone" "$TMP/gdnsd/zones/$z"; done
    cat >"$TMP/gdnsd/config" <<EOF
options => {
  listen => [ 127.0.0.1 ]
  dns_port => ${PORT[gdnsd]}
  udp_threads => 1
  tcp_threads => 1
  run_dir => $TMP/gdnsd/run
  state_dir => $TMP/gdnsd/state
}
EOF
fi

# --- start servers ----------------------------------------------------------------
start() { # name, log file, argv...
    local name=$1 logf=$2
    shift 2
    taskset -c "$SERVER_CPU" "$@" >"$logf" 2>&1 &
    PIDS+=($!)
    log "started $name (pid $!) on 127.0.0.1:${PORT[$name]}"
}
for s in $SERVERS; do
    case $s in
    hadns) RUST_LOG=${RUST_LOG:-warn} start hadns "$TMP/hadns.log" "$HADNS" run --config "$TMP/hadns.toml" ;;
    nsd) start nsd "$TMP/nsd/stderr.log" nsd -d -c "$TMP/nsd/nsd.conf" ;;
    knot) start knot "$TMP/knot/stderr.log" knotd -c "$TMP/knot/knot.conf" ;;
    gdnsd) start gdnsd "$TMP/gdnsd/stderr.log" gdnsd -c "$TMP/gdnsd" start ;;
    *) die "unknown server $s (hadns, nsd, knot, gdnsd)" ;;
    esac
done

# Wait until each answers ha.com A with both addresses (and check the mix answers).
for s in $SERVERS; do
    ok=
    for _ in $(seq 100); do
        ans=$(dig +short +time=1 +tries=1 @127.0.0.1 -p "${PORT[$s]}" ha.com A 2>/dev/null | sort | tr '\n' ' ')
        if [ "$ans" = "192.168.56.100 192.168.56.200 " ]; then ok=1; break; fi
        sleep 0.1
    done
    if [ -z "$ok" ]; then
        log "--- $s logs:"; cat "$TMP"/"$s".log "$TMP"/"$s"/*.log 2>/dev/null >&2 || true
        die "$s does not answer ha.com A on port ${PORT[$s]} (got: ${ans:-nothing})"
    fi
    nx=$(dig +time=1 +tries=1 @127.0.0.1 -p "${PORT[$s]}" nx.ha.com A | grep -o 'status: [A-Z]*' || true)
    [ "$nx" = "status: NXDOMAIN" ] || die "$s: nx.ha.com A gave '$nx', expected NXDOMAIN"
done

# --- rounds -------------------------------------------------------------------------
# Other work on the machine skews the figures. other_ticks sums the CPU time
# (utime+stime+cutime+cstime, so reaped children such as rustc count through
# their parent) of every user process outside this script's process group (our
# servers and dnsperf are in it); kernel threads are left out (ksoftirqd carries
# our own loopback traffic). Its change over a round is the CPU others took
# (approximate: a child reaped during the round adds all its CPU time).
# (cat fails when a process exits mid-read; with pipefail that must not count.)
MYPGID=$(ps -o pgid= -p $$ | tr -d ' ')
CLK_TCK=$(getconf CLK_TCK)
other_ticks() {
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v pg="$MYPGID" '{
        line = $0; sub(/^.*\) /, "", line); split(line, f, " ");
        # f[1]=state f[2]=ppid f[3]=pgrp ... f[12..15]=utime stime cutime cstime
        if ($1 == 2 || f[2] == 2 || f[3] == pg) next;
        t += f[12] + f[13] + f[14] + f[15];
    } END { print t + 0 }'
}
# QUIET_WAIT=N: before each measurement wait (up to N s) for a second in which
# other processes use under 5% of a core.
QUIET_WAIT=${QUIET_WAIT:-0}
wait_quiet() {
    local deadline=$((SECONDS + QUIET_WAIT)) a b
    while [ "$SECONDS" -lt "$deadline" ]; do
        a=$(other_ticks); sleep 1; b=$(other_ticks)
        [ $(((b - a) * 100 / CLK_TCK)) -lt 5 ] && return 0
    done
    log "(machine not quiet after ${QUIET_WAIT}s; measuring anyway)"
}
declare -A QPS LAT LOST OTHER
log "mode $MODE, $ROUNDS rounds x ${DURATION}s per server, dnsperf -c $CLIENTS -q $OUTSTANDING on CPU $GEN_CPU, servers on CPU $SERVER_CPU"
for r in $(seq "$ROUNDS"); do
    for s in $SERVERS; do
        [ "$QUIET_WAIT" -gt 0 ] && wait_quiet
        t0=$(other_ticks)
        out=$(taskset -c "$GEN_CPU" dnsperf -m "$MODE" -s 127.0.0.1 -p "${PORT[$s]}" -d "$QF" \
            -l "$DURATION" -c "$CLIENTS" -q "$OUTSTANDING" 2>&1) || die "dnsperf against $s failed: $out"
        t1=$(other_ticks)
        # CPU used by other processes during the round, % of one core.
        other=$(((t1 - t0) * 100 / CLK_TCK / DURATION))
        [ "$other" -lt 0 ] && other=0 # a process with CPU time exited
        q=$(awk '/Queries per second:/ {print $4}' <<<"$out")
        l=$(awk '/Average Latency/ {print $4; exit}' <<<"$out")  # first: queries (tcp adds connections)
        lost=$(awk '/Queries lost:/ {print $3}' <<<"$out")
        codes=$(sed -n 's/^ *Response codes: *//p' <<<"$out")
        [ -n "$q" ] || die "no qps in dnsperf output for $s: $out"
        QPS[$s]="${QPS[$s]:-} $q"
        LAT[$s]="${LAT[$s]:-} $l"
        LOST[$s]="${LOST[$s]:-} $lost"
        OTHER[$s]="${OTHER[$s]:-} $other%"
        log "round $r $s: $q qps, avg latency ${l}s, lost $lost, others used ${other}% CPU ($codes)"
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[n++]=$1} END {if (n==0) print 0; else if (n%2) print a[int(n/2)]; else print (a[n/2-1]+a[n/2])/2}'; }

printf '\n%s, %s rounds x %ss, dnsperf -c %s -q %s on CPU %s, servers on CPU %s\n' \
    "$MODE" "$ROUNDS" "$DURATION" "$CLIENTS" "$OUTSTANDING" "$GEN_CPU" "$SERVER_CPU"
printf '%-8s %12s %10s %14s %8s   %s\n' server "median qps" "max qps" "avg lat (ms)" lost "per round qps [CPU used by other processes]"
declare -A MED
for s in $SERVERS; do
    MED[$s]=$(median <<<"${QPS[$s]}")
    lat=$(median <<<"${LAT[$s]}")
    lost=$(tr ' ' '\n' <<<"${LOST[$s]}" | awk '{s+=$1} END {print s+0}')
    max=$(tr ' ' '\n' <<<"${QPS[$s]}" | grep -v '^$' | sort -g | tail -1)
    rounds=$(paste -d' ' <(tr ' ' '\n' <<<"${QPS[$s]# }" | awk '{printf "%.0f\n", $1}') \
        <(tr ' ' '\n' <<<"${OTHER[$s]# }" | sed 's/.*/[&]/') | tr '\n' ' ')
    printf '%-8s %12.0f %10.0f %14.3f %8s   %s\n' "$s" "${MED[$s]}" "$max" "$(awk -v l="$lat" 'BEGIN{print l*1000}')" "$lost" "$rounds"
done
if [ -n "${MED[hadns]:-}" ]; then
    echo
    for s in $SERVERS; do
        [ "$s" = hadns ] && continue
        awk -v a="${MED[hadns]}" -v b="${MED[$s]}" -v s="$s" 'BEGIN {printf "hadns/%s = %.2f\n", s, (b > 0 ? a / b : 0)}'
    done
fi
