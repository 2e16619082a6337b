#!/usr/bin/env bash
# install-deps.sh PACKAGE...: installs the Debian packages that are missing
# (root only; exits 0 at once when nothing is missing). Used by
# scripts/test.sh and bench/lib.sh so there is one copy of this.
#
# No daemon may start by itself in the host namespace: policy-rc.d exiting
# 101 is (re)written before every apt-get (an existing one may allow
# services), and tshark is installed without the setuid dumpcap question.
set -euo pipefail
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing ${missing[*]}; run as root to install them" >&2
  exit 1
fi
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d
export DEBIAN_FRONTEND=noninteractive
echo "installing: ${missing[*]}" >&2
apt-get update -qq
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get install -y -qq "${missing[@]}" >/dev/null
