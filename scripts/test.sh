#!/usr/bin/env bash
# Runs every hadns test: unit, integration (real binary + dig on 127.0.0.1) and
# the network-namespace tests (VRRP labs, keepalived interop), which need root.
# On a fresh Debian machine it first installs the Debian packages the tests
# use. No daemon is allowed to start by itself in the host namespace: the
# tests start each one by hand, inside namespaces they create or on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(bind9-dnsutils knot-dnsutils iproute2 iputils-arping keepalived tshark nginx-light unbound curl
      systemd man-db util-linux passwd)
# The .deb from the test build (same files, no extra release compile) for
# dns/tests/package.rs, which runs with the root-only tests; the release
# package is `scripts/package.sh` without arguments.
if [ "$(id -u)" = 0 ]; then bash scripts/package.sh --profile dev; fi
if [ "$(id -u)" = 0 ]; then
  bash scripts/install-deps.sh "${pkgs[@]}"
  exec cargo test --workspace -- --include-ignored
else
  echo "note: not root, so the network-namespace tests (VRRP, keepalived interop) are skipped;" >&2
  echo "      run as root to include them." >&2
  exec cargo test --workspace
fi
