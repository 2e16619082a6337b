#!/usr/bin/env bash
# The dual-master hot-standby lab, entirely inside network namespaces.
#
#   sudo examples/dual-master/lab.sh up       # build the lab, start everything
#   sudo examples/dual-master/lab.sh status   # who holds which VIP, processes
#   sudo examples/dual-master/lab.sh demo     # walk through the scenario (up + down)
#   sudo examples/dual-master/lab.sh down     # stop everything, delete namespaces
#
# Topology (one L2 segment = a bridge in the switch namespace):
#
#   client  $P-c  192.168.56.10    unbound on 127.0.0.1:53 (stub ha.com, ha1.com -> VIPs)
#   host A  $P-a  192.168.56.101   hadns (VI_1 MASTER, VI_2 BACKUP) + nginx
#   host B  $P-b  192.168.56.102   hadns (VI_1 BACKUP, VI_2 MASTER) + nginx
#   switch  $P-sw bridge br0
#   VIP1 192.168.56.100 (VRID 51), VIP2 192.168.56.200 (VRID 52)
#
# Environment:
#   LAB_PREFIX  namespace/name prefix (default hdlab); two labs with different
#               prefixes run side by side
#   LAB_DIR     configs, pid files and logs (default /tmp/$LAB_PREFIX)
#   HADNS_BIN   the hadns binary (default target/release/hadns, built if missing)
#   LAB_ADVERT  override every advert_interval (e.g. 10ms)
#   LAB_KEEP=1  `down` keeps LAB_DIR (logs)
#
# Safety: nothing is added to the host's own namespace (the veth pairs are
# created from inside the lab namespaces); every process is started here with
# a pid file and stopped by PID. The only file outside LAB_DIR is
# /etc/netns/$P-c/resolv.conf, which `ip netns exec` bind-mounts over
# /etc/resolv.conf for the client only (so `curl http://ha.com/` uses unbound).
#
# Extra subcommands (used by dns/tests/e2e_dual_master.rs):
#   exec a|b|c CMD...         run CMD in a namespace
#   holder VIP                print which hosts hold VIP (a, b, "a b" or none)
#   wait-holder VIP a|b SECS  wait until exactly that host holds VIP
#   hadns-kill a|b [SIGNAL]   signal hadns (default KILL) and wait for it to exit
#   hadns-start a|b           (re)start hadns
#   hadns-hup a|b             SIGHUP (reload config + zones)
#   nginx-stop a|b / nginx-start a|b
#   drain a|b VIP / undrain a|b VIP   nginx answers 503 on VIP (maintenance)
#   link-down a|b / link-up a|b       cut / restore a host's eth0 (host cut off)

# -E: the demo's ERR trap also fires for failures inside functions
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../../scripts/lab.sh
source "$ROOT/scripts/lab.sh"
P=${LAB_PREFIX:-hdlab}
LAB=${LAB_DIR:-/tmp/$P}
HADNS_BIN=${HADNS_BIN:-$ROOT/target/release/hadns}
ADVERT=${LAB_ADVERT:-}

SW=$P-sw
NS_a=$P-a
NS_b=$P-b
NS_c=$P-c
IP_a=192.168.56.101
IP_b=192.168.56.102
IP_c=192.168.56.10
VIP1=192.168.56.100
VIP2=192.168.56.200

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() { echo "lab.sh: $*" >&2; exit 1; }

ns_of() {
    case $1 in
        a) echo "$NS_a" ;; b) echo "$NS_b" ;; c) echo "$NS_c" ;;
        *) die "unknown node '$1' (a, b or c)" ;;
    esac
}
ip_of() {
    case $1 in a) echo "$IP_a" ;; b) echo "$IP_b" ;; c) echo "$IP_c" ;; esac
}
in_ns() { local ns; ns=$(ns_of "$1"); shift; ip netns exec "$ns" "$@"; }
now_ms() { lab_now_ms; }

# wait_until SECS DESCRIPTION CMD...: poll CMD every 20 ms until it succeeds.
wait_until() { lab_wait_until "$@"; }

pid_alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
# process $1 has exited (a zombie waiting for its reaper counts as exited:
# after `lab.sh up` returns, our daemons are reparented)
gone() { [[ ! -e /proc/$1 ]] || [[ $(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) == Z ]]; }

# --- VIP views ---------------------------------------------------------------
has_vip() { lab_has_addr "$(ns_of "$1")" "$2"; }
lacks_vip() { ! has_vip "$@"; }
lab_exists() { [[ -e /run/netns/$SW ]]; }
holder() {
    local out=()
    for h in a b; do has_vip "$h" "$1" && out+=("$h"); done
    if ((${#out[@]} == 0)); then echo none; else echo "${out[*]}"; fi
}
only_holder() { [[ $(holder "$1") == "$2" ]]; }
# hadns status on host $1: nothing DOWN and every check's last probe got
# its 200 (a check is "up" before its first result), twice, one probe
# interval apart
all_up() {
    local out n
    for n in 1 2; do
        ((n == 1)) || sleep 0.3
        out=$(in_ns "$1" "$HADNS_BIN" status --config "$LAB/host-$1.toml") || return 1
        [[ $out != *DOWN* ]] || return 1
        local line
        while IFS= read -r line; do
            [[ $line != check\ * || $line == *"(status 200)" ]] || return 1
        done <<<"$out"
    done
    return 0
}

# --- processes -------------------------------------------------------------
hadns_start() {
    local h=$1
    pid_alive "$LAB/hadns-$h.pid" && die "hadns on $h is already running"
    ip netns exec "$(ns_of "$h")" env RUST_LOG="${RUST_LOG:-info,hickory_server=warn}" \
        "$HADNS_BIN" run --config "$LAB/host-$h.toml" </dev/null >>"$LAB/hadns-$h.log" 2>&1 &
    echo $! >"$LAB/hadns-$h.pid"
    disown
    # up when it answers DNS on its own address
    wait_until 15 "hadns on $h answering DNS" \
        in_ns "$h" dig +short +time=1 +tries=1 @"$(ip_of "$h")" ha.com SOA \
        || { tail -20 "$LAB/hadns-$h.log" >&2; return 1; }
}
hadns_kill() {
    local h=$1 sig=${2:-KILL} f="$LAB/hadns-$1.pid"
    pid_alive "$f" || return 0
    local pid; pid=$(cat "$f")
    kill -s "$sig" "$pid"
    wait_until 10 "hadns on $h to exit" gone "$pid"
    rm -f "$f"
}
nginx_start() {
    local h=$1
    in_ns "$h" nginx -c "$LAB/nginx-$h.conf" -p "$LAB/nginx-$h/" 2>>"$LAB/nginx-$h.err"
    wait_until 5 "nginx on $h" pid_alive "$LAB/nginx-$h.pid"
}
nginx_stop() {
    local f="$LAB/nginx-$1.pid"
    pid_alive "$f" || return 0
    local pid; pid=$(cat "$f")
    kill -TERM "$pid"
    wait_until 10 "nginx on $1 to exit" gone "$pid"
    rm -f "$f"
}

# --- files -----------------------------------------------------------------
write_files() {
    mkdir -p "$LAB"
    chmod 755 "$LAB"
    for h in a b; do
        local tag page
        if [[ $h == a ]]; then tag=MASTER; else tag=BACKUP; fi
        page="Welcome to $tag-$(ip_of "$h")"
        mkdir -p "$LAB/www-$h" "$LAB/nginx-$h/tmp"
        echo "$page" >"$LAB/www-$h/index.html"
        chmod -R a+rX "$LAB/www-$h"
        cat >"$LAB/nginx-$h.conf" <<EOF
# nginx for lab host $h (started by lab.sh, stopped by PID)
worker_processes 1;
pid $LAB/nginx-$h.pid;
error_log $LAB/nginx-$h.err warn;
events { worker_connections 256; }
http {
    access_log off;
    default_type text/plain;
    client_body_temp_path $LAB/nginx-$h/tmp/body;
    proxy_temp_path $LAB/nginx-$h/tmp/proxy;
    fastcgi_temp_path $LAB/nginx-$h/tmp/fastcgi;
    uwsgi_temp_path $LAB/nginx-$h/tmp/uwsgi;
    scgi_temp_path $LAB/nginx-$h/tmp/scgi;
    server {
        listen 80 default_server;
        root $LAB/www-$h;
        index index.html;
        location / {
            # maintenance: "lab.sh drain $h VIP" makes this VIP answer 503
            if (-f $LAB/drain-$h-\$server_addr) { return 503; }
        }
    }
}
EOF
        # the example config, with absolute zones and optional advert interval
        local sed_args=(-e "s|^zones = .*|zones = \"$HERE/zones\"|")
        [[ -n $ADVERT ]] && sed_args+=(-e "s|^advert_interval = .*|advert_interval = \"$ADVERT\"|")
        sed "${sed_args[@]}" "$HERE/host-$h.toml" >"$LAB/host-$h.toml"
    done
    cat >"$LAB/unbound.conf" <<EOF
# unbound for the lab client: a real recursive resolver with stub zones
# pointing at the two VIPs (where hadns answers).
server:
    interface: 127.0.0.1
    port: 53
    access-control: 127.0.0.0/8 allow
    do-ip6: no
    chroot: ""
    username: ""
    directory: "$LAB"
    pidfile: "$LAB/unbound.pid"
    logfile: "$LAB/unbound.log"
    use-syslog: no
    verbosity: 1
    do-not-query-localhost: no
    module-config: "iterator"
    domain-insecure: "ha.com"
    domain-insecure: "ha1.com"
    # the pool's answers change per query and with health: keep them no
    # longer than their TTL (1 s)
    cache-max-ttl: 1
    cache-max-negative-ttl: 1
    infra-host-ttl: 2
    infra-keep-probing: yes
stub-zone:
    name: "ha.com"
    stub-addr: $VIP1
    stub-addr: $VIP2
stub-zone:
    name: "ha1.com"
    stub-addr: $VIP1
    stub-addr: $VIP2
remote-control:
    control-enable: no
EOF
}

# --- up / down -------------------------------------------------------------
ensure_bin() {
    if [[ ! -x $HADNS_BIN ]]; then
        say "building $HADNS_BIN"
        (cd "$ROOT" && cargo build --release -p hadns)
    fi
    [[ -x $HADNS_BIN ]] || die "no hadns binary at $HADNS_BIN (set HADNS_BIN)"
    for t in ip nginx unbound dig curl; do
        command -v "$t" >/dev/null || die "$t is not installed"
    done
}

make_net() {
    lab_switch "$SW"
    for h in a b c; do
        lab_host "$SW" "$(ns_of "$h")" "p$h" "$(ip_of "$h")"
    done
    mkdir -p "/etc/netns/$NS_c"
    echo "nameserver 127.0.0.1" >"/etc/netns/$NS_c/resolv.conf"
}

cmd_up() {
    [[ $(id -u) == 0 ]] || die "needs root (network namespaces)"
    ensure_bin
    lab_exists && die "lab $P is already up (lab.sh down first)"
    say "lab $P: namespaces $SW $NS_a $NS_b $NS_c, files in $LAB"
    rm -rf "$LAB"
    write_files
    make_net
    for h in a b; do nginx_start "$h"; done
    for h in a b; do hadns_start "$h"; done
    wait_until 15 "VIP1 on A" only_holder "$VIP1" a
    wait_until 15 "VIP2 on B" only_holder "$VIP2" b
    # the web checks saw the VIPs unreachable during the election: wait
    # until they rose again on both hosts
    for h in a b; do
        wait_until 15 "every pool member and check up on $h" all_up "$h"
    done
    in_ns c unbound-checkconf "$LAB/unbound.conf" >/dev/null
    in_ns c unbound -c "$LAB/unbound.conf"
    wait_until 5 "unbound" pid_alive "$LAB/unbound.pid"
    wait_until 15 "ha.com through unbound" \
        bash -c "ip netns exec $NS_c dig +short +time=1 +tries=1 @127.0.0.1 ha.com A | grep -q ."
    say "lab $P is up"
}

cmd_down() {
    local pids=()
    for f in "$LAB"/*.pid; do
        [[ -f $f ]] || continue
        pids+=("$(cat "$f")")
    done
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    # whatever is still running inside our namespaces was started by us
    lab_down 3000 "$NS_a" "$NS_b" "$NS_c" "$SW"
    rm -rf "/etc/netns/$NS_c"
    rmdir /etc/netns 2>/dev/null || true # only if no other lab uses it
    if [[ ${LAB_KEEP:-0} != 1 ]]; then rm -rf "$LAB"; fi
    echo "lab $P is down"
}

proc_line() {
    local what=$1 f=$2
    if pid_alive "$f"; then printf '    %-14s pid %s\n' "$what" "$(cat "$f")"
    else printf '    %-14s stopped\n' "$what"; fi
}

cmd_status() {
    lab_exists || { echo "lab $P is not up"; return 1; }
    say "addresses (ip -n NS -br -4 addr show dev eth0)"
    for h in a b c; do
        printf '    %-6s %s\n' "$(ns_of "$h")" "$(ip -n "$(ns_of "$h")" -br -4 addr show dev eth0)"
    done
    note "VIP1 $VIP1 on: $(holder $VIP1)    VIP2 $VIP2 on: $(holder $VIP2)"
    say "processes"
    for h in a b; do
        proc_line "hadns $h" "$LAB/hadns-$h.pid"
        proc_line "nginx $h" "$LAB/nginx-$h.pid"
    done
    proc_line "unbound c" "$LAB/unbound.pid"
    for h in a b; do
        if pid_alive "$LAB/hadns-$h.pid"; then
            say "hadns status on $h"
            in_ns "$h" "$HADNS_BIN" status --config "$LAB/host-$h.toml" | sed 's/^/    /' || true
        fi
    done
}

# --- demo ------------------------------------------------------------------
client() { in_ns c "$@"; }
show_addrs() {
    for h in a b; do
        printf '    host %s: %s\n' "$h" "$(ip -n "$(ns_of "$h")" -br -4 addr show dev eth0)"
    done
}
digs() { # digs SERVER NAME N: N answers on one line each
    local out=()
    for ((i = 0; i < $3; i++)); do
        out+=("$(client dig +short +time=1 +tries=1 @"$1" "$2" A | sort | paste -sd, -)")
    done
    echo "${out[*]}"
}
curl_page() { client curl -s -m 1 "$@" || echo "(no answer)"; }

# probe_start URL: curl URL from the client in a loop, one line per request
probe_start() {
    ip netns exec "$NS_c" bash -c "while :; do curl -s -m 0.5 $1 || echo FAIL; done" \
        >"$LAB/probe.out" 2>/dev/null </dev/null &
    echo $! >"$LAB/probe.pid"
    disown
}
probe_stop() {
    local pid; pid=$(cat "$LAB/probe.pid")
    kill "$pid" 2>/dev/null || true
    wait_until 5 "probe loop to stop" gone "$pid"
    rm -f "$LAB/probe.pid"
    local total fail a b
    total=$(grep -c . "$LAB/probe.out" || true)
    fail=$(grep -c FAIL "$LAB/probe.out" || true)
    a=$(grep -c MASTER "$LAB/probe.out" || true)
    b=$(grep -c BACKUP "$LAB/probe.out" || true)
    note "client probe: $total requests, $fail failed, $a served by A, $b by B"
}

cmd_demo() {
    [[ $(id -u) == 0 ]] || die "needs root (network namespaces)"
    trap 'rc=$?; trap - ERR INT TERM; echo "demo failed; cleaning up" >&2; cmd_down; exit $((rc ? rc : 1))' ERR INT TERM
    cmd_up
    say "1. both hosts serving: A holds VIP1, B holds VIP2"
    show_addrs
    note "curl http://$VIP1/ -> $(curl_page http://$VIP1/)"
    note "curl http://$VIP2/ -> $(curl_page http://$VIP2/)"

    say "2. the client's resolver (unbound, stub ha.com/ha1.com -> VIPs)"
    note "dig @127.0.0.1 ha.com, once a second (pool TTL 1s; each of the two"
    note "servers unbound asks alternates VIP1/VIP2 on its own, 50:50):"
    local i line=()
    for ((i = 0; i < 8; i++)); do
        line+=("$(client dig +short @127.0.0.1 ha.com A | paste -sd, -)")
        sleep 1.05
    done
    note "  ${line[*]}"
    note "dig @127.0.0.1 ha1.com -> $(client dig +short @127.0.0.1 ha1.com A | paste -sd, -)"
    note "direct to A's DNS, 8 queries: $(digs $IP_a ha.com 8)"
    note "which host answers each VIP (dig +nsid): VIP1 $(client dig +nsid +time=1 +tries=1 @$VIP1 ha.com A | sed -n 's/^; NSID: .*(\"\(.*\)\")$/\1/p'), VIP2 $(client dig +nsid +time=1 +tries=1 @$VIP2 ha.com A | sed -n 's/^; NSID: .*(\"\(.*\)\")$/\1/p')"
    note "curl http://ha.com/ -> $(curl_page http://ha.com/)"
    note "curl http://ha1.com/ -> $(curl_page http://ha1.com/)"

    say "3. kill -9 hadns on B: A takes VIP2 after Master_Down_Interval"
    probe_start "http://$VIP2/"
    sleep 0.3
    local t0 t1
    t0=$(now_ms)
    hadns_kill b KILL
    wait_until 10 "VIP2 on A" has_vip a "$VIP2"
    t1=$(now_ms)
    note "VIP2 on A $((t1 - t0)) ms after the kill (advert interval $(grep -m1 '^advert_interval' "$LAB/host-a.toml" | cut -d'"' -f2))"
    wait_until 10 "B's stale VIP2 to expire" lacks_vip b "$VIP2"
    note "B's VIP2 expired by itself $(( $(now_ms) - t0 )) ms after the kill (netlink valid lifetime)"
    sleep 0.3
    probe_stop
    show_addrs
    note "curl http://$VIP2/ -> $(curl_page http://$VIP2/)"
    note "A's DNS still answers both VIPs (both are alive): $(digs $IP_a ha.com 4)"

    say "4. B comes back: it preempts VIP2 (priority 100 > 90)"
    hadns_start b
    wait_until 10 "VIP2 back on B" only_holder "$VIP2" b
    show_addrs
    note "curl http://$VIP2/ -> $(curl_page http://$VIP2/)"

    say "5. stop nginx on B (hadns alive): track web -30 -> VI_2 priority 70 < 90, A takes VIP2"
    nginx_stop b
    wait_until 10 "VIP2 on A" only_holder "$VIP2" a
    show_addrs
    note "curl http://$VIP2/ -> $(curl_page http://$VIP2/)"
    in_ns b "$HADNS_BIN" status --config "$LAB/host-b.toml" 2>/dev/null | grep -E '^ *(vrrp|VI_)' | sed 's/^/    B: /' || true
    nginx_start b
    wait_until 10 "VIP2 back on B" only_holder "$VIP2" b
    note "nginx on B started again: VIP2 back on B -> $(curl_page http://$VIP2/)"

    say "6. health-aware answers: VIP2 drained (nginx answers 503 on it on both hosts)"
    touch "$LAB/drain-a-$VIP2" "$LAB/drain-b-$VIP2"
    wait_until 10 "VIP2 out of A's answers" bash -c \
        "[[ \$(ip netns exec $NS_c dig +short @$IP_a ha.com A | sort | paste -sd, - ) == $VIP1 ]] && [[ \$(ip netns exec $NS_c dig +short @$IP_a ha.com A | sort | paste -sd, - ) == $VIP1 ]]"
    note "direct to A's DNS: $(digs $IP_a ha.com 4)"
    note "through unbound:   $(digs 127.0.0.1 ha.com 2)"
    rm -f "$LAB/drain-a-$VIP2" "$LAB/drain-b-$VIP2"

    say "7. both nginx stopped: every member down -> fail-open (when_all_down = all)"
    nginx_stop a
    nginx_stop b
    wait_until 10 "fail-open answer" bash -c \
        "[[ \$(ip netns exec $NS_c dig +short @$IP_a ha.com A | sort | paste -sd, -) == $VIP1,$VIP2 ]]"
    note "direct to A's DNS: $(digs $IP_a ha.com 3)"
    show_addrs
    nginx_start a
    nginx_start b
    wait_until 10 "one VIP per answer again" bash -c \
        "[[ \$(ip netns exec $NS_c dig +short @$IP_a ha.com A | grep -c .) == 1 ]]"
    note "nginx back: $(digs $IP_a ha.com 4)"

    say "done; tearing down"
    trap - ERR INT TERM
    cmd_down
}

# --- main ------------------------------------------------------------------
cmd=${1:-}
shift || true
case $cmd in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    demo) cmd_demo ;;
    exec) h=$1; shift; in_ns "$h" "$@" ;;
    holder) holder "$1" ;;
    wait-holder) wait_until "${3:-10}" "$1 held by $2 only" only_holder "$1" "$2" ;;
    hadns-kill) hadns_kill "$1" "${2:-KILL}" ;;
    hadns-start) hadns_start "$1" ;;
    hadns-hup) kill -HUP "$(cat "$LAB/hadns-$1.pid")" ;;
    nginx-stop) nginx_stop "$1" ;;
    nginx-start) nginx_start "$1" ;;
    drain) touch "$LAB/drain-$1-$2" ;;
    undrain) rm -f "$LAB/drain-$1-$2" ;;
    link-down) ip -n "$(ns_of "$1")" link set eth0 down ;;
    link-up) ip -n "$(ns_of "$1")" link set eth0 up ;;
    *) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 2 ;;
esac
