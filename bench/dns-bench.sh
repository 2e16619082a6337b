#!/usr/bin/env bash
# dnsperf against hadns, NSD, Knot and gdnsd serving the same zones, side by
# side in one run (issue 2's benchmark): UDP and TCP, each server pinned to
# CPU 1, dnsperf to CPU 0, interleaved rounds, median qps and hadns/peer
# ratios. It is the "dnsperf" and "tcp" parts of bench/udp-bench.sh, which
# holds the server set-up (bench/lib.sh) for every benchmark:
#
#   bench/dns-bench.sh                         # 3 rounds x 5 s per server
#   ROUNDS=5 DURATION=10 bench/dns-bench.sh
#   PARTS=dnsperf bench/dns-bench.sh           # UDP only
#
# Env: as bench/udp-bench.sh (DURATION, ROUNDS, SERVERS, DNSPERF_CLIENTS,
# DNSPERF_OUTSTANDING, SERVER_CPU, GEN_CPU, BASE_PORT, KEEP_TMP).
set -euo pipefail
PARTS=${PARTS:-"dnsperf tcp"} exec "$(dirname "$0")/udp-bench.sh" "$@"
