#!/usr/bin/env bash
# UDP (and TCP) benchmark of hadns against Knot, NSD and gdnsd (issue 5).
#
#   bench/udp-bench.sh                          # 3 rounds x 5 s per server
#   ROUNDS=5 DURATION=10 bench/udp-bench.sh
#   PARTS="loadgen dnsperf tcp workers2 bigzone" bench/udp-bench.sh
#
# Same zones (zones/) and query mix for every server: 70% ha.com A (the
# pool in hadns; two static A records elsewhere — same answer size), 10%
# ha1.com A, 10% www.ha.com A (CNAME), 5% nx.ha.com A (NXDOMAIN), 5% ha.com
# AAAA (NODATA). Each server on one core (taskset -c $SERVER_CPU, one
# worker/thread), the generator on the other (taskset -c $GEN_CPU). Rounds
# are interleaved (hadns, knot, nsd, gdnsd, hadns, ...) so drift on the
# machine hits every server alike. Servers listen on 127.0.0.1 high ports,
# everything lives in a temp dir, every process is killed by PID on exit.
#
# Parts (PARTS, default "loadgen dnsperf tcp workers2"):
#   loadgen   hadns-loadgen (batched sendmmsg/recvmmsg): median qps, p50, p99,
#             lost, and the ratio hadns / each
#   dnsperf   dnsperf over UDP (tops out near 400k qps here whatever the server)
#   tcp       dnsperf -m tcp
#   workers2  hadns with 2 fast-path workers on both CPUs (the generator
#             then shares CPU $GEN_CPU) vs 1 worker
#   bigzone   a zone of $BIG_NAMES names, and
#   manyzones $MANY_ZONES small zones in one folder: for hadns, Knot and NSD
#             the load time, resident memory, qps and lost queries on random
#             names; then a reload (SIGHUP, files touched) under a light load
#             ($RELOAD_INFLIGHT in flight for $RELOAD_SECONDS s): lost
#             queries, peak memory during it and memory after. Memory is
#             PSS summed over the process tree; loading may use both CPUs,
#             serving is pinned to SERVER_CPU
#   rrl       response rate limiting: the fast path with RRL on (rate
#             $RRL_HIGH, no whitelist: every query goes through the limiter,
#             none is limited) vs off, interleaved rounds; then
#             $RRL_COUNT identical queries at $RRL_QPS qps from one source
#             (bench/rrl-probe.py) against hadns (fast and full path), NSD
#             and Knot, each limiting at $RRL_RATE/s with slip 2
#   lines     lines (issue 13): the fast path with $LINES_NETS client networks
#             in [[line]]s (prefix lengths 9-32, and 127.0.1-8.0/24, none
#             matching the generator) plus 127.0.0.0/8 on a line whose
#             ha.com pool answers it — every ha.com query takes the slow
#             way of the longest-prefix match (a longer network starts in
#             its /16, so every length from 32 down to 17 is searched) —
#             vs the same config without lines; interleaved rounds, the
#             ratio lines/none (target >= 0.9)
#
# Env: DURATION (s, 5), ROUNDS (3), SERVERS ("hadns knot nsd gdnsd"),
#      INFLIGHT (256), SOCKETS (4), DNSPERF_CLIENTS (8), DNSPERF_OUTSTANDING (200),
#      HADNS_BASE (an older hadns binary, also run in bigzone/manyzones as "base"),
#      BIG_NAMES (1000000), MANY_ZONES (10000), RELOAD_SECONDS (20),
#      RELOAD_INFLIGHT (8), RRL_HIGH (1000000), RRL_RATE (200), RRL_COUNT (3000),
#      RRL_QPS (41000), LINES_NETS (2000), SERVER_CPU (1), GEN_CPU (0), BASE_PORT, KEEP_TMP=1.
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
SERVERS=${SERVERS:-"hadns knot nsd gdnsd"}
INFLIGHT=${INFLIGHT:-256}
SOCKETS=${SOCKETS:-4}
DNSPERF_CLIENTS=${DNSPERF_CLIENTS:-8}
DNSPERF_OUTSTANDING=${DNSPERF_OUTSTANDING:-200}
PARTS=${PARTS:-"loadgen dnsperf tcp workers2"}
BIG_NAMES=${BIG_NAMES:-1000000}
RRL_HIGH=${RRL_HIGH:-1000000}
RRL_RATE=${RRL_RATE:-200}
RRL_COUNT=${RRL_COUNT:-3000}
RRL_QPS=${RRL_QPS:-41000}
LINES_NETS=${LINES_NETS:-2000}
MANY_ZONES=${MANY_ZONES:-10000}
RELOAD_SECONDS=${RELOAD_SECONDS:-20}
RELOAD_INFLIGHT=${RELOAD_INFLIGHT:-8}

has_part() { [[ " $PARTS " == *" $1 "* ]]; }

tools="nsd:nsd knotd:knot dig:bind9-dnsutils taskset:util-linux"
{ has_part dnsperf || has_part tcp; } && tools+=" dnsperf:dnsperf"
[[ " $SERVERS " == *" gdnsd "* ]] && tools+=" gdnsd:gdnsd"
has_part rrl && tools+=" python3:python3"
# shellcheck disable=SC2086
bench_tools $tools
ncpu=$(nproc --all)
[ "$ncpu" -gt "$SERVER_CPU" ] && [ "$ncpu" -gt "$GEN_CPU" ] ||
    die "needs CPUs $GEN_CPU and $SERVER_CPU (have $ncpu); set SERVER_CPU/GEN_CPU"

log "building hadns and hadns-loadgen (release)"
(cd "$BENCH_ROOT" && cargo build --release -q -p hadns -p hadns-loadgen) || die "cargo build failed"
HADNS="$BENCH_ROOT/target/release/hadns"
LOADGEN="$BENCH_ROOT/target/release/hadns-loadgen"

bench_tmp
QF="$TMP/queries.txt"
bench_query_file "$QF"
bench_ports $SERVERS hadns2 rrloff rrlon rrlfast rrlfull rrlnsd rrlknot linesoff lineson
for s in $SERVERS; do
    case $s in
    hadns) conf_hadns hadns "$TMP/zones" 1 ;;
    nsd) conf_nsd nsd "$TMP/zones" ;;
    knot) conf_knot knot "$TMP/zones" 1 ;;
    gdnsd) conf_gdnsd gdnsd "$TMP/zones" ;;
    *) die "unknown server $s" ;;
    esac
    bench_start "$s" "$s" "$TMP/$s.log"
done
for s in $SERVERS; do bench_wait "$s"; done

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
printf 'hadns %s, %s; %s rounds x %ss; servers on CPU %s, generator on CPU %s; %s\n' \
    "$(git -C "$BENCH_ROOT" rev-parse --short HEAD 2>/dev/null || echo ?)" "$(uname -r)" \
    "$ROUNDS" "$DURATION" "$SERVER_CPU" "$GEN_CPU" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"

# loadgen PORT [CPU]: prints "qps p50 p99 lost"
run_loadgen() {
    local out
    out=$(taskset -c "${2:-$GEN_CPU}" "$LOADGEN" -s "127.0.0.1:$1" -d "$QF" -l "$DURATION" \
        -q "$INFLIGHT" -c "$SOCKETS" 2>&1) || { log "$out"; return 1; }
    sed -n 's/^RESULT qps=\([0-9]*\) p50_us=\([0-9]*\) p99_us=\([0-9]*\) .* lost=\([0-9]*\)$/\1 \2 \3 \4/p' <<<"$out"
}

# CPU seconds (user + system) a process and all its descendants (NSD's
# server process is a grandchild) have used so far.
cpu_s() {
    local p t=0 hz
    hz=$(getconf CLK_TCK)
    for p in $(tree_pids "$1"); do
        # comm may contain spaces ("nsd: main"): fields after the last ')'.
        t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk -v t="$t" -v hz="$hz" '{print t + ($12 + $13) / hz}' || echo "$t")
    done
    echo "${t:-0}"
}
tree_pids() {
    local c
    echo "$1"
    for c in $(pgrep -P "$1" || true); do tree_pids "$c"; done
}

ratio_lines() { # assoc-array name of medians
    local -n m=$1
    [ -n "${m[hadns]:-}" ] || return 0
    for s in $SERVERS; do
        [ "$s" = hadns ] && continue
        awk -v a="${m[hadns]}" -v b="${m[$s]:-0}" -v s="$s" 'BEGIN {printf "  hadns/%s = %.2f\n", s, (b > 0 ? a / b : 0)}'
    done
}

# ab_rounds A B TITLE RATIO: starts hadns configs A and B, runs ROUNDS
# interleaved loadgen rounds on each, stops them, prints the medians and
# B/A (labelled RATIO).
ab_rounds() {
    local a=$1 b=$2 s r q lost
    local -A qs med
    for s in "$a" "$b"; do bench_start "$s" hadns "$TMP/$s.log"; done
    for s in "$a" "$b"; do bench_wait "$s"; done
    for r in $(seq "$ROUNDS"); do
        for s in "$a" "$b"; do
            read -r q _ _ lost < <(run_loadgen "${PORT[$s]}") || die "loadgen against $s failed"
            qs[$s]="${qs[$s]:-} $q"
            log "round $r $s: $q qps, lost $lost"
        done
    done
    for s in "$a" "$b"; do bench_stop "$s"; done
    printf '\n%s, loadgen, median of %s rounds:\n' "$3" "$ROUNDS"
    for s in "$a" "$b"; do
        med[$s]=$(median <<<"${qs[$s]}")
        printf '  %-8s %10.0f qps   %s\n' "$s" "${med[$s]}" "${qs[$s]# }"
    done
    awk -v x="${med[$b]}" -v y="${med[$a]}" -v l="$4" 'BEGIN {printf "  %s = %.3f\n", l, (y > 0 ? x / y : 0)}'
}

if has_part loadgen; then
    declare -A LQ LP50 LP99 LLOST LCPU LEFF MQ ME
    log "loadgen: $INFLIGHT in flight over $SOCKETS sockets"
    for r in $(seq "$ROUNDS"); do
        for s in $SERVERS; do
            c0=$(cpu_s "${SPID[$s]}")
            read -r q p50 p99 lost < <(run_loadgen "${PORT[$s]}") || die "loadgen against $s failed"
            c1=$(cpu_s "${SPID[$s]}")
            busy=$(awk -v a="$c0" -v b="$c1" -v d="$DURATION" 'BEGIN {print (b - a) / d}')
            LQ[$s]="${LQ[$s]:-} $q"; LP50[$s]="${LP50[$s]:-} $p50"; LP99[$s]="${LP99[$s]:-} $p99"
            LLOST[$s]="${LLOST[$s]:-} $lost"; LCPU[$s]="${LCPU[$s]:-} $busy"
            LEFF[$s]="${LEFF[$s]:-} $(awk -v q="$q" -v b="$busy" 'BEGIN {print (b > 0 ? q / b : 0)}')"
            log "round $r $s: $q qps, p50 ${p50}us, p99 ${p99}us, lost $lost, server CPU busy $busy"
        done
    done
    printf '\nUDP, hadns-loadgen (%s in flight, %s sockets), median of %s rounds:\n' "$INFLIGHT" "$SOCKETS" "$ROUNDS"
    printf '  %-7s %10s %9s %9s %8s %9s %12s   %s\n' server qps "p50 us" "p99 us" lost "CPU busy" "qps/CPU-s" "per round qps"
    for s in $SERVERS; do
        MQ[$s]=$(median <<<"${LQ[$s]}")
        ME[$s]=$(median <<<"${LEFF[$s]}")
        printf '  %-7s %10.0f %9.0f %9.0f %8s %9.2f %12.0f   %s\n' "$s" "${MQ[$s]}" "$(median <<<"${LP50[$s]}")" \
            "$(median <<<"${LP99[$s]}")" "$(tr ' ' '\n' <<<"${LLOST[$s]}" | awk '{s+=$1} END {print s+0}')" \
            "$(median <<<"${LCPU[$s]}")" "${ME[$s]}" "${LQ[$s]# }"
    done
    printf '  (CPU busy: server CPU-seconds per second; below ~0.95 the generator, not the server, is the\n'
    printf '   limit, and qps/CPU-s, the queries one server core answers per second of its time, ranks them)\n'
    printf '  qps:\n'
    ratio_lines MQ
    printf '  qps per server CPU-second:\n'
    ratio_lines ME
fi

dnsperf_part() { # mode
    local mode=$1 out q r s
    declare -A DQ DM
    for r in $(seq "$ROUNDS"); do
        for s in $SERVERS; do
            out=$(taskset -c "$GEN_CPU" dnsperf -m "$mode" -s 127.0.0.1 -p "${PORT[$s]}" -d "$QF" \
                -l "$DURATION" -c "$DNSPERF_CLIENTS" -q "$DNSPERF_OUTSTANDING" 2>&1) || die "dnsperf against $s failed: $out"
            q=$(awk '/Queries per second:/ {print $4}' <<<"$out")
            [ -n "$q" ] || die "no qps in dnsperf output for $s: $out"
            DQ[$s]="${DQ[$s]:-} $q"
            log "dnsperf $mode round $r $s: $q qps"
        done
    done
    printf '\n%s, dnsperf -c %s -q %s, median of %s rounds:\n' "${mode^^}" "$DNSPERF_CLIENTS" "$DNSPERF_OUTSTANDING" "$ROUNDS"
    for s in $SERVERS; do
        DM[$s]=$(median <<<"${DQ[$s]}")
        printf '  %-7s %10.0f qps   %s\n' "$s" "${DM[$s]}" "${DQ[$s]# }"
    done
    ratio_lines DM
}
has_part dnsperf && dnsperf_part udp
has_part tcp && dnsperf_part tcp

if has_part workers2 && [[ " $SERVERS " == *" hadns "* ]]; then
    conf_hadns hadns2 "$TMP/zones" 2
    bench_start hadns2 hadns "$TMP/hadns2.log" "$GEN_CPU,$SERVER_CPU"
    bench_wait hadns2
    declare -A W
    for r in $(seq "$ROUNDS"); do
        for s in hadns hadns2; do
            c0=$(cpu_s "${SPID[$s]}")
            read -r q _ _ _ < <(run_loadgen "${PORT[$s]}") || die "loadgen failed"
            c1=$(cpu_s "${SPID[$s]}")
            W[$s]="${W[$s]:-} $q"
            W[$s.cpu]="${W[$s.cpu]:-} $(awk -v a="$c0" -v b="$c1" -v d="$DURATION" 'BEGIN {print (b - a) / d}')"
            W[$s.per]="${W[$s.per]:-} $(awk -v a="$c0" -v b="$c1" -v q="$q" -v d="$DURATION" 'BEGIN {print (b > a ? q * d / (b - a) : 0)}')"
        done
    done
    bench_stop hadns2
    printf '\nhadns fast-path workers (generator on CPU %s; qps per server CPU-second = efficiency):\n' "$GEN_CPU"
    printf '  1 worker on CPU %s:      %10.0f qps, server CPUs busy %.2f, %8.0f qps per CPU-second\n' "$SERVER_CPU" \
        "$(median <<<"${W[hadns]}")" "$(median <<<"${W[hadns.cpu]}")" "$(median <<<"${W[hadns.per]}")"
    printf '  2 workers on CPUs %s,%s:  %10.0f qps, server CPUs busy %.2f, %8.0f qps per CPU-second\n' "$GEN_CPU" "$SERVER_CPU" \
        "$(median <<<"${W[hadns2]}")" "$(median <<<"${W[hadns2.cpu]}")" "$(median <<<"${W[hadns2.per]}")"
fi

if has_part rrl; then
    conf_hadns rrloff "$TMP/zones" 1 true "enabled = false"
    conf_hadns rrlon "$TMP/zones" 1 true $'rate = '"$RRL_HIGH"$'\nwhitelist = []'
    printf -v title 'hadns fast path with RRL on (rate %s/s, no whitelist) vs off' "$RRL_HIGH"
    ab_rounds rrloff rrlon "$title" "on/off"

    lim=$'rate = '"$RRL_RATE"$'\nslip = 2\nwhitelist = []'
    conf_hadns rrlfast "$TMP/zones" 1 true "$lim"
    conf_hadns rrlfull "$TMP/zones" 1 false "$lim"
    conf_nsd rrlnsd "$TMP/zones" "$RRL_RATE"
    conf_knot rrlknot "$TMP/zones" 1 "$RRL_RATE"
    bench_start rrlfast hadns "$TMP/rrlfast.log"
    bench_start rrlfull hadns "$TMP/rrlfull.log"
    bench_start rrlnsd nsd "$TMP/rrlnsd.log"
    bench_start rrlknot knot "$TMP/rrlknot.log"
    for s in rrlfast rrlfull rrlnsd rrlknot; do bench_wait "$s"; done
    printf '\n%s identical queries (ha.com A) at %s qps from one source, RRL %s/s slip 2:\n' "$RRL_COUNT" "$RRL_QPS" "$RRL_RATE"
    printf '  %-16s %6s %6s %6s %6s %11s\n' server full tc none "sent/s" "tc/replied"
    for s in rrlfast rrlfull rrlnsd rrlknot; do
        # a fresh second for each: buckets refilled after bench_wait's queries
        sleep 1.1
        out=$(taskset -c "$GEN_CPU" python3 "$BENCH_ROOT/bench/rrl-probe.py" "${PORT[$s]}" ha.com "$RRL_COUNT" "$RRL_QPS") ||
            die "rrl-probe against $s failed"
        read -r full tc none rate < <(sed -n 's/^RRL sent=[0-9]* full=\([0-9]*\) tc=\([0-9]*\) none=\([0-9]*\) rate=\([0-9]*\)$/\1 \2 \3 \4/p' <<<"$out")
        case $s in rrlfast) label="hadns fast path" ;; rrlfull) label="hadns full path" ;; rrlnsd) label=nsd ;; *) label=knot ;; esac
        printf '  %-16s %6s %6s %6s %6s %10.0f%%\n' "$label" "$full" "$tc" "$none" "$rate" \
            "$(awk -v t="$tc" -v f="$full" 'BEGIN {print (t + f > 0 ? 100 * t / (t + f) : 0)}')"
    done
    for s in rrlfast rrlfull rrlnsd rrlknot; do bench_stop "$s"; done
fi

if has_part lines; then
    conf_hadns linesoff "$TMP/zones" 1
    conf_hadns lineson "$TMP/zones" 1
    # LINES_NETS distinct networks, 24 prefix lengths, first octet 1-126 (never
    # 127: the generator's 127.0.0.1 matches only 127.0.0.0/8, the shortest).
    awk -v n="$LINES_NETS" 'BEGIN {
        srand(13); printf "\n[[line]]\nname = \"bulk\"\nnetworks = [\n";
        while (k < n) {
            len = 9 + k % 24; a = (1 + int(rand() * 126)) * 16777216 + int(rand() * 16777216);
            m = 2 ^ (32 - len); a = a - a % m;
            if ((a, len) in seen) continue; seen[a, len] = 1; k++;
            printf "  \"%d.%d.%d.%d/%d\",\n", int(a / 16777216), int(a / 65536) % 256, int(a / 256) % 256, a % 256, len;
        }
        for (i = 1; i <= 8; i++) printf "  \"127.0.%d.0/24\",\n", i;
        print "]\n\n[[line]]\nname = \"lo\"\nnetworks = [\"127.0.0.0/8\"]\n";
        print "[[pool]]\nname = \"ha.com.\"\ntype = \"A\"\nline = \"lo\"\nmode = \"equal\"\nttl = 10";
        print "members = [ { address = \"192.168.56.200\" }, { address = \"192.168.56.100\" } ]";
    }' >>"$TMP/lineson.toml"
    "$HADNS" check --config "$TMP/lineson.toml" >/dev/null || die "the lines config does not check"
    printf -v title 'hadns fast path with %s line networks (every ha.com query matched) vs no lines' "$LINES_NETS"
    ab_rounds linesoff lineson "$title" "lines/none"
fi

# rss_tree PID: resident kB of a process and its descendants (NSD forks
# its server, and a reload forks a new one next to the old), as PSS: pages
# a fork shares with its parent count once, not once per process.
rss_tree() {
    local p t=0
    for p in $(tree_pids "$1"); do
        t=$((t + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)))
    done
    echo "$t"
}

# scale_case LABEL ZONEDIR QNAME WANT QUERIES: for each of hadns, Knot and
# NSD: start on ZONEDIR, load time (until QNAME A answers WANT), resident
# memory, qps and lost queries on QUERIES; then a reload (zone files
# touched, SIGHUP) under a light load ($RELOAD_INFLIGHT in flight): lost
# queries, peak memory (sampled every 0.1 s, whole process tree) and memory
# after.
scale_case() {
    local label=$1 dir=$2 qname=$3 want=$4 queries=$5 s name t0 t1 rss out pid peak r t q p99 lost rq rlost p
    local HADNS=$HADNS # "base" runs HADNS_BASE (an older build) as hadns
    printf '\n%s (%s MB of zone files):\n' "$label" "$(du -sm "$dir" | cut -f1)"
    printf '  %-6s %8s %9s %9s %6s %6s | reload: %6s %9s %9s %9s\n' \
        server load RSS_MB qps p99_us lost lost peak_MB after_MB reload_qps
    for s in ${HADNS_BASE:+base} hadns knot nsd; do
        [[ " $SERVERS base " == *" $s "* ]] || continue
        name="scale$s"
        PORT[$name]=$((BASE_PORT + 20))
        case $s in
        base) conf_hadns "$name" "$dir" 1 && HADNS=$HADNS_BASE ;;
        hadns) conf_hadns "$name" "$dir" 1 && HADNS=$BENCH_ROOT/target/release/hadns ;;
        nsd) conf_nsd "$name" "$dir" ;;
        knot) conf_knot "$name" "$dir" 1 ;;
        esac
        # Loading may use every CPU (each server as it can); serving is
        # pinned to $SERVER_CPU as in the other parts.
        t0=$(date +%s.%N)
        RUST_LOG=warn,hadns::app=info,hadns::fastpath=info bench_start "$name" "${s/base/hadns}" "$TMP/$name.log" "$GEN_CPU,$SERVER_CPU"
        bench_wait "$name" "$qname" "$want" 6000
        # hadns answers from the full path while the fast path precompiles
        # its answers: loaded means both.
        if [ "$s" != knot ] && [ "$s" != nsd ]; then
            for _ in $(seq 3000); do grep -q "answers precompiled" "$TMP/$name.log" && break; sleep 0.1; done
        fi
        t1=$(date +%s.%N)
        pid=${SPID[$name]}
        sleep 1 # let a server that loads in the background settle
        for p in $(tree_pids "$pid"); do taskset -a -p -c "$SERVER_CPU" "$p" >/dev/null; done
        rss=$(rss_tree "$pid")
        out=$(taskset -c "$GEN_CPU" "$LOADGEN" -s "127.0.0.1:${PORT[$name]}" -d "$queries" -l "$DURATION" \
            -q "$INFLIGHT" -c "$SOCKETS" | sed -n 's/^RESULT qps=\([0-9]*\) .*p99_us=\([0-9]*\) .*lost=\([0-9]*\)$/\1 \2 \3/p')
        read -r q p99 lost <<<"$out"
        # Reload under load: touch the files (NSD and Knot reload changed
        # files only), SIGHUP one second into the run, sample memory.
        find "$dir" -name '*.zone' -exec touch {} +
        taskset -c "$GEN_CPU" "$LOADGEN" -s "127.0.0.1:${PORT[$name]}" -d "$queries" -l "$RELOAD_SECONDS" \
            -q "$RELOAD_INFLIGHT" -c 2 >"$TMP/$name.reload" 2>&1 &
        r=$!
        peak=0
        sleep 1
        kill -HUP "$pid"
        while kill -0 "$r" 2>/dev/null; do
            t=$(rss_tree "$pid")
            [ "$t" -gt "$peak" ] && peak=$t
            sleep 0.1
        done
        wait "$r" || true
        # Memory after: once hadns logs the reload done (the others swap
        # within the run), and the replaced data is freed.
        if [ "$s" != knot ] && [ "$s" != nsd ]; then
            for _ in $(seq 1200); do
                grep -q "reload done" "$TMP/$name.log" && break
                t=$(rss_tree "$pid")
                [ "$t" -gt "$peak" ] && peak=$t
                sleep 0.1
            done
            grep -q "reload done" "$TMP/$name.log" || log "$s: no 'reload done' in its log"
        fi
        sleep 2
        read -r rq rlost < <(sed -n 's/^RESULT qps=\([0-9]*\) .*lost=\([0-9]*\)$/\1 \2/p' "$TMP/$name.reload")
        printf '  %-6s %7.1fs %9d %9s %6s %6s | reload: %6s %9d %9d %9s\n' "$s" \
            "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" $((rss / 1024)) "$q" "$p99" "$lost" \
            "$rlost" $((peak / 1024)) $(($(rss_tree "$pid") / 1024)) "$rq"
        bench_stop "$name"
    done
}

if has_part bigzone || has_part manyzones; then
    # Stop the small-zone servers: memory and CPU for the big ones.
    for s in $SERVERS; do bench_stop "$s"; done
fi

if has_part bigzone; then
    BZ="$TMP/bigzone"
    mkdir -p "$BZ"
    cp "$TMP"/zones/*.zone "$BZ/" # ha.com too: the hadns config has its pool
    log "writing a zone of $BIG_NAMES names"
    awk -v n="$BIG_NAMES" 'BEGIN {
        print "$ORIGIN big.test.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 604800 60\n@ IN NS ns1\nns1 IN A 10.255.255.1";
        print "ha IN A 192.168.56.100\nha IN A 192.168.56.200";
        for (i = 0; i < n; i++) printf "h%d IN A 10.%d.%d.%d\n", i, int(i / 65536) % 256, int(i / 256) % 256, i % 256;
    }' >"$BZ/big.test.zone"
    awk -v n="$BIG_NAMES" 'BEGIN { srand(7); for (i = 0; i < 100000; i++) printf "h%d.big.test A\n", int(rand() * n) }' >"$TMP/bigq.txt"
    last="h$((BIG_NAMES - 1)).big.test"
    want="10.$(((BIG_NAMES - 1) / 65536 % 256)).$(((BIG_NAMES - 1) / 256 % 256)).$(((BIG_NAMES - 1) % 256)) "
    scale_case "zone of $BIG_NAMES names, random names" "$BZ" "$last" "$want" "$TMP/bigq.txt"
    rm -rf "$BZ"
fi

if has_part manyzones; then
    MZ="$TMP/manyzones"
    mkdir -p "$MZ"
    cp "$TMP"/zones/*.zone "$MZ/"
    log "writing $MANY_ZONES small zones"
    (cd "$MZ" && awk -v n="$MANY_ZONES" 'BEGIN { for (z = 0; z < n; z++) {
        f = sprintf("z%d.test.zone", z);
        printf "$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 604800 60\n@ IN NS ns1\n@ IN NS ns2\nns1 IN A 10.0.0.1\nns2 IN A 10.0.0.2\n@ IN A 10.1.%d.%d\nwww IN CNAME @\nmail IN A 10.2.%d.%d\n@ IN MX 10 mail\n@ IN TXT \"v=spf1 mx -all\"\n", int(z / 256) % 256, z % 256, int(z / 256) % 256, z % 256 > f;
        close(f) } }')
    awk -v n="$MANY_ZONES" 'BEGIN { srand(9); for (i = 0; i < 100000; i++) printf "%sz%d.test A\n", (rand() < 0.5 ? "www." : ""), int(rand() * n) }' >"$TMP/manyq.txt"
    z=$((MANY_ZONES - 1))
    scale_case "$MANY_ZONES zones in one folder, random zones" "$MZ" "z$z.test" "10.1.$((z / 256 % 256)).$((z % 256)) " "$TMP/manyq.txt"
fi

printf '\nload average before: %s, after: %s (the benchmark itself adds ~2)\n' "$LOAD_BEFORE" "$(cut -d' ' -f1-3 /proc/loadavg)"
