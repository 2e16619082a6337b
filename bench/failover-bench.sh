#!/usr/bin/env bash
# Failover benchmark: keepalived 2.2.7 vs hadns, same lab, same intervals.
#
#   sudo bench/failover-bench.sh            # both intervals (v2 1s, v3 10ms)
#   sudo bench/failover-bench.sh v3         # only v3 10ms
#   ROUNDS=10 ROUNDS_V2=3 sudo -E bench/failover-bench.sh   # more rounds (default 5 / 1)
#   HADNS=target/release/hadns sudo -E bench/failover-bench.sh
#
# Lab (all inside namespaces created here, names include the PID; nothing
# touches the host namespace): a switch namespace with a bridge, two nodes
# (.101 priority 200, .102 priority 100, VIP 192.168.56.100) and a client
# (.103). Each node serves DNS on VIP:15353 (hadns itself; next to
# keepalived a VRRP-less hadns does it). The client sends a DNS query to the
# VIP every 2 ms; a probe with no answer within 200 ms is lost. Outage = the
# longest run of lost probes (ms). Scenarios, each starting with node 1 as
# master:
#   SIGKILL   every process of node 1 killed (a crash)
#   SIGTERM   the VRRP daemon on node 1 stopped gracefully
#   link cut  node 1's switch port set down
#   failback  node 1's VRRP daemon started again while node 2 is master
# "dead VIP" = how long the killed node 1 keeps the VIP after the kill
# (keepalived leaves it; hadns' netlink VIP lifetime removes it).
set -euo pipefail

[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 1; }
for t in ip python3 keepalived; do
  command -v $t >/dev/null || { echo "needs $t (the client probe is a small python3 script)" >&2; exit 1; }
done
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=../scripts/lab.sh
source "$ROOT/scripts/lab.sh"
HADNS=${HADNS:-}
if [ -z "$HADNS" ]; then
  if [ -x target/release/hadns ]; then HADNS=$ROOT/target/release/hadns
  else cargo build -q -p hadns && HADNS=$ROOT/target/debug/hadns; fi
fi
KEEPALIVED=${KEEPALIVED:-/usr/sbin/keepalived}
MODES=${1:-"v2 v3"}
VIP=192.168.56.100
ID=fb$$
SW=$ID-sw
DIR=$(mktemp -d /tmp/hadns-failover-bench.XXXXXX)
PIDS=()

cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  lab_down 0 $ID-n1 $ID-n2 $ID-c $SW
  rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

lab_up() {
  lab_switch $SW
  local i=1
  for h in n1 n2 c; do
    lab_host $SW $ID-$h p$i 192.168.56.$((100 + i))
    i=$((i + 1))
  done
}

cat > $DIR/probe.py <<'EOF'
# probe.py VIP PORT INTERVAL_MS DURATION_S: DNS queries to VIP:PORT; prints
# "sent lost outage_ms" (outage = longest run of unanswered probes).
import random, select, socket, struct, sys, time
vip, port, every, dur = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) / 1000, float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setblocking(False)
qname = b"".join(bytes([len(p)]) + p for p in b"ha1.com".split(b".")) + b"\0"
sent, answered = {}, set()
start = time.monotonic(); nxt = start; qid = random.randrange(65536)
while True:
    now = time.monotonic()
    if now - start >= dur:
        break
    if now >= nxt:
        qid = (qid + 1) & 0xffff
        try:
            s.sendto(struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qname + b"\0\6\0\1", (vip, port))
        except OSError:
            pass
        sent[qid] = now; nxt += every
    r, _, _ = select.select([s], [], [], max(0, min(nxt - time.monotonic(), 0.002)))
    while r:
        try:
            data = s.recv(2048)
        except BlockingIOError:
            break
        q = struct.unpack(">H", data[:2])[0]
        if q in sent and time.monotonic() - sent[q] < 0.2:
            answered.add(q)
# settle: answers may still be in flight for the last probes
end = time.monotonic() + 0.2
while time.monotonic() < end:
    r, _, _ = select.select([s], [], [], 0.01)
    if r:
        q = struct.unpack(">H", s.recv(2048)[:2])[0]
        if q in sent and time.monotonic() - sent[q] < 0.2:
            answered.add(q)
order = sorted(sent.items(), key=lambda kv: kv[1])
lost = [t for q, t in order if q not in answered and t < start + dur - 0.2]
run = best = 0.0; prev = None
for q, t in order:
    if t >= start + dur - 0.2:
        break
    if q in answered:
        prev = None; run = 0.0
    else:
        if prev is None:
            prev = t
        run = t - prev + every
        best = max(best, run)
print(len(sent), len(lost), round(best * 1000, 1))
EOF

# ---- node configs -----------------------------------------------------------
hadns_conf() { # node prio mode -> path
  local n=$1 prio=$2 mode=$3 f=$DIR/hadns-$1-$3.toml
  local ver=3 int=10ms
  [ "$mode" = v2 ] && ver=2 int=1s
  cat > $f <<EOF
[dns]
listen = ["$VIP:15353"]
zones = "$ROOT/zones"

# The probe asks 500 times a second from one client: no RRL here.
[rrl]
enabled = false

[[vrrp]]
name = "VI_1"
interface = "eth0"
vrid = 51
priority = $prio
version = $ver
advert_interval = "$int"
addresses = ["$VIP/24"]
EOF
  echo $f
}
dns_only_conf() {
  local f=$DIR/dns-only.toml
  printf '[dns]\nlisten = ["%s:15353"]\nzones = "%s/zones"\n[rrl]\nenabled = false\n' $VIP "$ROOT" > $f
  echo $f
}
keepalived_conf() { # node prio mode -> path
  local n=$1 prio=$2 mode=$3 f=$DIR/keepalived-$1-$3.conf
  local ver=3 int=0.01
  [ "$mode" = v2 ] && ver=2 int=1
  cat > $f <<EOF
global_defs {
  router_id $n
  vrrp_version $ver
  script_user root
  enable_script_security
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority $prio
  advert_int $int
  virtual_ipaddress {
    $VIP/24
  }
}
EOF
  echo $f
}

# start_vrrp IMPL NODE MODE: starts the VRRP daemon (and for keepalived the
# DNS server) on node; sets VRRP_PID[NODE].
declare -A VRRP_PID DNS_PID
start_vrrp() {
  local impl=$1 n=$2 mode=$3 prio=200
  [ "$n" = n2 ] && prio=100
  if [ "$impl" = hadns ]; then
    RUST_LOG=warn ip netns exec $ID-$n "$HADNS" run --config "$(hadns_conf $n $prio $mode)" >> $DIR/$n.log 2>&1 &
    VRRP_PID[$n]=$!; PIDS+=($!); disown $!
  else
    if [ -z "${DNS_PID[$n]:-}" ] || ! kill -0 "${DNS_PID[$n]}" 2>/dev/null; then
      RUST_LOG=warn ip netns exec $ID-$n "$HADNS" run --config "$(dns_only_conf)" >> $DIR/$n-dns.log 2>&1 &
      DNS_PID[$n]=$!; PIDS+=($!); disown $!
    fi
    ip netns exec $ID-$n $KEEPALIVED -n -l -G -P -f "$(keepalived_conf $n $prio $mode)" \
      -p $DIR/$n.kpid -r $DIR/$n.kvpid >> $DIR/$n.log 2>&1 &
    VRRP_PID[$n]=$!; PIDS+=($!); disown $!
  fi
}
has_vip() { lab_has_addr $ID-$1 $VIP; }
wait_until() { lab_wait_until "$1" "$2" "$2"; } # timeout_s check
n1_master() { has_vip n1 && ! has_vip n2; }
n2_only() { has_vip n2 && ! has_vip n1; }
not_n1_vip() { ! has_vip n1; }
probe_ok() { ip netns exec $ID-c python3 $DIR/probe.py $VIP 15353 2 0.3 | awk '{exit !($2 == 0)}'; }

# measure DURATION ACTION...: runs the probe, fires ACTION after 0.5 s,
# leaves "sent lost outage_ms" in $DIR/probe.out. (Not run in a subshell:
# ACTION may start daemons whose PIDs we keep.)
measure() {
  local dur=$1; shift
  ip netns exec $ID-c python3 $DIR/probe.py $VIP 15353 2 "$dur" > $DIR/probe.out &
  local pp=$!
  # A random phase against the advert timer (up to one interval), so the
  # rounds sample the whole Master_Down_Interval range fairly.
  sleep "$(awk -v s=$RANDOM -v j=$JITTER 'BEGIN { srand(s); printf "%.4f", 0.5 + rand() * j }')"
  "$@"
  wait $pp
}
kill_node() { # everything on n1 at once, keepalived's VRRP child first (so
  # it cannot see its parent die and clean up)
  local pids; pids="$(cat $DIR/n1.kvpid 2>/dev/null || true) $(ip netns pids $ID-n1)"
  kill -9 $pids 2>/dev/null || true
  rm -f $DIR/n1.kvpid
  # How long the dead node keeps the VIP (polled every 20 ms, up to 8 s).
  ( t0=$(date +%s%N); end=$((t0 + 8000000000))
    while has_vip n1 && [ "$(date +%s%N)" -lt $end ]; do sleep 0.02; done
    if has_vip n1; then echo stays; else echo $(( ($(date +%s%N) - t0) / 1000000 )); fi > $DIR/gone ) &
  GONE_PID=$!
}
term_vrrp() { kill -TERM "${VRRP_PID[n1]}"; }
cut_link() { ip -n $SW link set p1 down; }

declare -A RESULT
run_impl() { # IMPL MODE
  local impl=$1 mode=$2 win=1.5 settle=3 rounds=${ROUNDS:-5}
  JITTER=0.01
  [ "$mode" = v2 ] && win=7 settle=10 rounds=${ROUNDS_V2:-1} JITTER=1
  lab_up
  start_vrrp $impl n1 $mode; start_vrrp $impl n2 $mode
  wait_until 15 n1_master || { echo "$impl $mode: n1 never became master" >&2; tail $DIR/*.log >&2; exit 1; }
  wait_until 10 probe_ok || { echo "$impl $mode: VIP does not answer" >&2; exit 1; }
  local r
  for r in $(seq 1 $rounds); do
    echo "  round $r/$rounds" >&2
    # SIGKILL
    measure $win kill_node; add $impl $mode kill
    wait $GONE_PID || true
    RESULT[$impl,$mode,left]="${RESULT[$impl,$mode,left]:-}$(cat $DIR/gone) "
    # failback: node 1 comes back (both remove their stale VIP at start)
    measure $win start_vrrp $impl n1 $mode; add $impl $mode failback
    wait_until $settle n1_master || { echo "$impl $mode: no failback" >&2; exit 1; }
    wait_until 10 probe_ok
    # SIGTERM
    measure $win term_vrrp; add $impl $mode term
    wait_until $settle n2_only || true
    start_vrrp $impl n1 $mode
    wait_until $settle n1_master
    wait_until 10 probe_ok
    # link cut
    measure $win cut_link; add $impl $mode cut
    ip -n $SW link set p1 up
    wait_until $settle n1_master || { echo "$impl $mode: no return after link cut" >&2; exit 1; }
    wait_until 10 probe_ok
  done
  cleanup_lab
}
add() { # IMPL MODE SCENARIO: appends this round's "sent lost outage"
  RESULT[$1,$2,$3]="${RESULT[$1,$2,$3]:-}$(cat $DIR/probe.out);"
}
cleanup_lab() {
  lab_down 0 $ID-n1 $ID-n2 $ID-c $SW
  unset DNS_PID; declare -gA DNS_PID
}

left() { # "ms ms stays ..." -> "gone after max ms" or "stays (n of m)"
  echo "$1" | awk '{ for (i=1;i<=NF;i++) if ($i=="stays") st++; else if ($i>mx) mx=$i
    if (st) printf "left behind (%d of %d kills)", st, NF; else printf "gone within %d ms of kill", mx }'
}
fmt() { # "s l o;s l o;..." -> "median ms [min-max] lost/rounds"
  echo "$1" | tr ';' '\n' | awk 'NF==3 {o[n++]=$3; lost+=$2}
    END { if (!n) { print "-"; exit }
          for (i=0;i<n;i++) for (j=i+1;j<n;j++) if (o[j]<o[i]) {t=o[i];o[i]=o[j];o[j]=t}
          m = (n%2) ? o[int(n/2)] : (o[n/2-1]+o[n/2])/2
          printf "%6.1f ms [%s-%s] lost %d/%d", m, o[0], o[n-1], lost, n }'
}

for mode in $MODES; do
  for impl in keepalived hadns; do
    echo "running $impl $mode ..." >&2
    run_impl $impl $mode
  done
done

echo
echo "Failover outage seen by a client probing the VIP every 2 ms (DNS over UDP):"
echo "median [min-max] over the rounds, probes lost in total / rounds"
printf '%-10s %-9s %-38s %-38s\n' mode scenario "keepalived $($KEEPALIVED --version 2>&1 | head -1 | awk '{print $2}')" hadns
for mode in $MODES; do
  label=$mode; [ $mode = v2 ] && label="v2 1s" || label="v3 10ms"
  for sc in kill term cut failback; do
    name=$sc; case $sc in kill) name=SIGKILL;; term) name=SIGTERM;; cut) name="link cut";; esac
    printf '%-10s %-9s %-38s %-38s\n' "$label" "$name" "$(fmt "${RESULT[keepalived,$mode,$sc]}")" "$(fmt "${RESULT[hadns,$mode,$sc]}")"
  done
  printf '%-10s %-9s %-38s %-38s\n' "$label" "dead VIP" "$(left "${RESULT[keepalived,$mode,left]}")" "$(left "${RESULT[hadns,$mode,left]}")"
done
if [ -n "${RAW:-}" ]; then
  echo; echo "raw rounds (sent lost outage_ms):"
  for k in "${!RESULT[@]}"; do echo "  $k: ${RESULT[$k]}"; done | sort
fi
