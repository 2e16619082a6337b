# Shared parts of the benchmark scripts (sourced, not run): tools, a temp
# dir with cleanup, the query mix, configs for hadns / NSD / Knot / gdnsd on
# 127.0.0.1 high ports, starting servers pinned to a CPU, waiting until they
# answer, medians. Every process started here is killed by PID on exit.
#
# Callers set (or take the defaults of) SERVER_CPU, GEN_CPU, BASE_PORT and
# call, in order: bench_tools PKGS..., bench_tmp, bench_query_file FILE,
# bench_ports SERVERS..., conf_<server> ..., bench_start NAME LOG ARGV...,
# bench_wait NAME.

SERVER_CPU=${SERVER_CPU:-1}
GEN_CPU=${GEN_CPU:-0}
BASE_PORT=${BASE_PORT:-$((20000 + RANDOM % 20000))}
BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PATH=$PATH:/usr/sbin

log() { printf '%s\n' "$*" >&2; }
die() { log "bench: $*"; exit 1; }

# bench_tools CMD:PACKAGE...: installs the packages whose command is missing
# (root only), through scripts/install-deps.sh (policy-rc.d first: daemons
# never autostart).
bench_tools() {
    local need=() spec cmd pkg
    for spec in "$@"; do
        cmd=${spec%%:*}
        pkg=${spec#*:}
        command -v "$cmd" >/dev/null || [ -x "/usr/sbin/$cmd" ] || need+=("$pkg")
    done
    [ ${#need[@]} -eq 0 ] && return 0
    bash "$(dirname "${BASH_SOURCE[0]}")/../scripts/install-deps.sh" "${need[@]}" || die "cannot install ${need[*]}"
}

# bench_tmp: $TMP with zones/ copied in; cleanup kills PIDS and removes it.
PIDS=()
bench_cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
    if [ -n "${TMP:-}" ]; then
        if [ "${KEEP_TMP:-0}" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
    fi
}
bench_tmp() {
    TMP=$(mktemp -d /tmp/hadns-bench.XXXXXX)
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    mkdir -p "$TMP/zones"
    cp "$BENCH_ROOT"/zones/*.zone "$TMP/zones/"
}

# bench_stop NAME: stops one server started with bench_start.
bench_stop() {
    local pid=${SPID[$1]:-}
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "SPID[$1]"
}

# The query mix of issues 2 and 5: 70% ha.com A (the pool), 10% ha1.com A,
# 10% www.ha.com A (CNAME to the pool), 5% nx.ha.com A (NXDOMAIN), 5%
# ha.com AAAA (NODATA); 1000 lines, fixed shuffled order.
bench_query_file() {
    awk 'BEGIN {
        srand(42);
        for (i = 0; i < 700; i++) q[n++] = "ha.com A";
        for (i = 0; i < 100; i++) q[n++] = "ha1.com A";
        for (i = 0; i < 100; i++) q[n++] = "www.ha.com A";
        for (i = 0; i < 50; i++)  q[n++] = "nx.ha.com A";
        for (i = 0; i < 50; i++)  q[n++] = "ha.com AAAA";
        for (i = n - 1; i > 0; i--) { j = int(rand() * (i + 1)); t = q[i]; q[i] = q[j]; q[j] = t }
        for (i = 0; i < n; i++) print q[i];
    }' >"$1"
}

# bench_ports NAME...: PORT[NAME] = consecutive ports from BASE_PORT.
declare -A PORT SPID
bench_ports() {
    local p=$BASE_PORT s
    for s in "$@"; do PORT[$s]=$p; p=$((p + 1)); done
}

zone_names() { for f in "$1"/*.zone; do basename "$f" .zone; done; }

# conf_hadns NAME ZONEDIR WORKERS [FAST_PATH] [RRL]: $TMP/NAME.toml; ha.com
# is an equal pool with the two addresses NSD/Knot/gdnsd serve statically.
# RRL: the body of its [rrl] section (default: off, like the others here).
conf_hadns() {
    cat >"$TMP/$1.toml" <<EOF
[dns]
listen = ["127.0.0.1:${PORT[$1]}"]
zones = "$2"
workers = $3
fast_path = ${4:-true}

[control]
enabled = false

[rrl]
${5:-enabled = false}

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
}

# conf_nsd NAME ZONEDIR [RRL_RATE]: $TMP/NAME/nsd.conf (one server process;
# response rate limiting at RRL_RATE per /24, slip 2, or off).
conf_nsd() {
    local d="$TMP/$1" z
    mkdir -p "$d"
    {
        cat <<EOF
server:
    ip-address: 127.0.0.1@${PORT[$1]}
    port: ${PORT[$1]}
    do-ip6: no
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "$2"
    database: ""
    zonelistfile: "$d/zone.list"
    xfrdfile: "$d/xfrd.state"
    xfrdir: "$d"
    pidfile: "$d/nsd.pid"
    logfile: "$d/nsd.log"
    verbosity: 0
    hide-version: yes
    # Debian's NSD has response rate limiting on (200 qps per /24): off, or
    # a benchmark from one address measures the limiter.
    rrl-ratelimit: ${3:-0}
    rrl-whitelist-ratelimit: ${3:-0}
    rrl-slip: 2
remote-control:
    control-enable: no
EOF
        for z in $(zone_names "$2"); do
            printf 'zone:\n    name: %s\n    zonefile: %s.zone\n' "$z" "$z"
        done
    } >"$d/nsd.conf"
}

# conf_knot NAME ZONEDIR WORKERS [RRL_RATE]: $TMP/NAME/knot.conf (with
# mod-rrl at RRL_RATE, slip 2, when given).
conf_knot() {
    local d="$TMP/$1" z
    mkdir -p "$d/db"
    {
        cat <<EOF
server:
    rundir: "$d"
    pidfile: "$d/knot.pid"
    user: root:root
    listen: 127.0.0.1@${PORT[$1]}
    udp-workers: ${3:-1}
    tcp-workers: ${3:-1}
    background-workers: 1
control:
    listen: "$d/knot.sock"
database:
    storage: "$d/db"
log:
  - target: "$d/knot.log"
    any: warning
EOF
        if [ -n "${4:-}" ]; then
            printf 'mod-rrl:\n  - id: rrl\n    rate-limit: %s\n    slip: 2\n' "$4"
        fi
        cat <<EOF
template:
  - id: default
    storage: "$2"
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
EOF
        if [ -n "${4:-}" ]; then printf '    global-module: mod-rrl/rrl\n'; fi
        printf 'zone:\n'
        for z in $(zone_names "$2"); do printf '  - domain: %s\n' "$z"; done
    } >"$d/knot.conf"
}

# conf_gdnsd NAME ZONEDIR: config dir $TMP/NAME (zones/ named by zone).
conf_gdnsd() {
    local d="$TMP/$1" z
    mkdir -p "$d/zones" "$d/run" "$d/state"
    for z in $(zone_names "$2"); do ln -sf "$2/$z.zone" "$d/zones/$z"; done
    cat >"$d/config" <<EOF
options => {
    listen => [ 127.0.0.1 ]
    dns_port => ${PORT[$1]}
    udp_threads => 1
    tcp_threads => 1
    run_dir => $d/run
    state_dir => $d/state
}
EOF
}

# bench_start NAME KIND LOG [CPU]: starts server KIND (hadns|nsd|knot|gdnsd)
# configured as NAME, pinned to CPU (default SERVER_CPU).
bench_start() {
    local name=$1 kind=$2 logf=$3 cpu=${4:-$SERVER_CPU}
    case $kind in
    hadns) RUST_LOG=${RUST_LOG:-warn} taskset -c "$cpu" "$HADNS" run --config "$TMP/$name.toml" >"$logf" 2>&1 & ;;
    nsd) taskset -c "$cpu" nsd -d -c "$TMP/$name/nsd.conf" >"$logf" 2>&1 & ;;
    knot) taskset -c "$cpu" knotd -c "$TMP/$name/knot.conf" >"$logf" 2>&1 & ;;
    gdnsd) taskset -c "$cpu" gdnsd -c "$TMP/$name" start >"$logf" 2>&1 & ;;
    *) die "unknown server kind $kind (hadns, nsd, knot, gdnsd)" ;;
    esac
    PIDS+=($!)
    SPID[$name]=$!
    log "started $name ($kind, pid $!) on 127.0.0.1:${PORT[$name]}, CPU $cpu"
}

# bench_wait NAME [QNAME EXPECTED] [TRIES]: waits until the server answers
# (default: ha.com A with both addresses) and checks nx.ha.com NXDOMAIN.
bench_wait() {
    local s=$1 qname=${2:-ha.com} want=${3:-"192.168.56.100 192.168.56.200 "} tries=${4:-100} ans= ok=
    for _ in $(seq "$tries"); do
        ans=$( (dig +short +time=1 +tries=1 @127.0.0.1 -p "${PORT[$s]}" "$qname" A 2>/dev/null || true) | sort | tr '\n' ' ')
        if [ "$ans" = "$want" ]; then ok=1; break; fi
        sleep 0.1
    done
    if [ -z "$ok" ]; then
        log "--- $s logs:"; cat "$TMP/$s".log "$TMP/$s"/*.log 2>/dev/null >&2 || true
        die "$s does not answer $qname A on port ${PORT[$s]} (got: ${ans:-nothing})"
    fi
    if [ "$qname" = ha.com ]; then
        local nx
        nx=$(dig +time=1 +tries=1 @127.0.0.1 -p "${PORT[$s]}" nx.ha.com A | grep -o 'status: [A-Z]*' || true)
        [ "$nx" = "status: NXDOMAIN" ] || die "$s: nx.ha.com A gave '$nx', expected NXDOMAIN"
    fi
    return 0
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[n++]=$1} END {if (n==0) print 0; else if (n%2) print a[int(n/2)]; else print (a[n/2-1]+a[n/2])/2}'; }
