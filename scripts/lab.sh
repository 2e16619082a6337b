# scripts/lab.sh: the netns lab, sourced (not run) by bench/failover-bench.sh
# and examples/dual-master/lab.sh; dns/tests/netns_common is the same
# topology for the Rust tests.
#
#   switch namespace SW: bridge br0 (no forward delay, no multicast snooping)
#   host namespace NS:   eth0 (veth; its peer PORT is a port of SW's br0),
#                        ADDR/24, lo up, net.ipv4.ip_nonlocal_bind=1 (DNS
#                        binds a VIP before the host holds it)
#
# Everything lives in namespaces the caller names (give them a unique
# prefix per run: two labs can run side by side); nothing is added to the
# host's own namespace. lab_down kills what runs in them by PID (never by
# process name) and deletes them: call it from the caller's EXIT trap.
#
#   lab_switch SW
#   lab_host SW NS PORT ADDR
#   lab_has_addr NS ADDR          ADDR is on NS's eth0
#   lab_wait_until SECS WHAT CMD...   poll CMD every 20 ms; on timeout say
#                                 WHAT on stderr and return 1
#   lab_down GRACE_MS NS...       SIGTERM every process in each NS, SIGKILL
#                                 what is left after GRACE_MS (0: SIGKILL at
#                                 once), delete the namespaces

lab_now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

lab_switch() {
    local sw=$1
    ip netns add "$sw"
    ip -n "$sw" link set lo up
    ip -n "$sw" link add br0 type bridge
    ip -n "$sw" link set br0 type bridge forward_delay 0 mcast_snooping 0
    ip -n "$sw" link set br0 up
}

lab_host() {
    local sw=$1 ns=$2 port=$3 addr=$4
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip netns exec "$ns" sysctl -qw net.ipv4.ip_nonlocal_bind=1
    # the veth is created inside the host's namespace, its peer moved to
    # the switch: no interface ever appears in the caller's namespace
    ip -n "$ns" link add eth0 type veth peer name "$port" netns "$sw"
    ip -n "$sw" link set "$port" master br0
    ip -n "$sw" link set "$port" up
    ip -n "$ns" addr add "$addr/24" dev eth0
    ip -n "$ns" link set eth0 up
}

# (no `ip | grep -q` under pipefail: grep exiting early can SIGPIPE ip and
# turn a match into a failure)
lab_has_addr() {
    local out
    out=$(ip -n "$1" -o addr show dev eth0 2>/dev/null) || return 1
    [[ $out == *" $2/"* ]]
}

lab_wait_until() {
    local secs=$1 what=$2; shift 2
    local deadline=$(( $(lab_now_ms) + secs * 1000 ))
    until "$@" >/dev/null 2>&1; do
        if (( $(lab_now_ms) > deadline )); then
            echo "timed out after ${secs}s waiting for: $what" >&2
            return 1
        fi
        sleep 0.02
    done
}

lab_down() {
    local grace=$1 ns pid; shift
    if (( grace > 0 )); then
        for ns in "$@"; do
            for pid in $(ip netns pids "$ns" 2>/dev/null); do
                kill -TERM "$pid" 2>/dev/null || true
            done
        done
        local deadline=$(( $(lab_now_ms) + grace ))
        for ns in "$@"; do
            while [[ -n $(ip netns pids "$ns" 2>/dev/null) ]] && (( $(lab_now_ms) < deadline )); do
                sleep 0.05
            done
        done
    fi
    for ns in "$@"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null || true
        done
    done
    for ns in "$@"; do
        ip netns del "$ns" 2>/dev/null || true
    done
}
