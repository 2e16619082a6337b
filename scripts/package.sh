#!/usr/bin/env bash
# Builds the Debian package target/debian/hadns_<version>_<arch>.deb from a
# staged tree with dpkg-deb (no cargo-deb to install): the binary in
# /usr/sbin, the systemd unit, the sysctl drop-in, /etc/hadns/hadns.toml and
# /etc/hadns/zones/, the man pages hadns(8) and hadns.toml(5), and the bash,
# zsh and fish completions. Nothing is installed or started on this machine.
#
#   scripts/package.sh                  # release build (what you install)
#   scripts/package.sh --profile dev    # reuse the test build (CI's package test)
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
if [ "${1:-}" = "--profile" ]; then profile=${2:?--profile needs a value}; fi
cargo build --profile "$profile" -p hadns --bin hadns
dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
target=${CARGO_TARGET_DIR:-target}
bin="$target/$dir/hadns"

version=$("$bin" --version | awk '{print $2}')
arch=$(dpkg --print-architecture)
out="$target/debian"
stage="$out/stage"
rm -rf "$stage"
mkdir -p "$stage/DEBIAN" "$out"

install -D -m 0755 "$bin" "$stage/usr/sbin/hadns"
strip --strip-debug "$stage/usr/sbin/hadns"
install -D -m 0644 packaging/hadns.service "$stage/lib/systemd/system/hadns.service"
install -D -m 0644 packaging/60-hadns.conf "$stage/usr/lib/sysctl.d/60-hadns.conf"
install -D -m 0644 packaging/hadns.toml "$stage/etc/hadns/hadns.toml"
install -d -m 0755 "$stage/etc/hadns/zones"
install -m 0644 packaging/zones/*.zone "$stage/etc/hadns/zones/"

gen="$out/generated"
rm -rf "$gen"
"$bin" generate man "$gen/man"
"$bin" generate completions "$gen/completions"
install -D -m 0644 "$gen/man/hadns.8" "$stage/usr/share/man/man8/hadns.8"
install -D -m 0644 "$gen/man/hadns.toml.5" "$stage/usr/share/man/man5/hadns.toml.5"
gzip -9n "$stage/usr/share/man/man8/hadns.8" "$stage/usr/share/man/man5/hadns.toml.5"
install -D -m 0644 "$gen/completions/hadns" "$stage/usr/share/bash-completion/completions/hadns"
install -D -m 0644 "$gen/completions/_hadns" "$stage/usr/share/zsh/vendor-completions/_hadns"
install -D -m 0644 "$gen/completions/hadns.fish" "$stage/usr/share/fish/vendor_completions.d/hadns.fish"

doc="$stage/usr/share/doc/hadns"
install -d "$doc"
{
  echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
  echo "Upstream-Name: hadns"
  echo
  echo "Files: *"
  echo "License: MIT or Apache-2.0"
  echo " See /usr/share/doc/hadns/LICENSE-MIT and LICENSE-APACHE."
} > "$doc/copyright"
install -m 0644 LICENSE-MIT LICENSE-APACHE "$doc/"
gzip -9nc README.md > "$doc/README.md.gz"

cat > "$stage/DEBIAN/conffiles" <<CONF
/etc/hadns/hadns.toml
/etc/hadns/zones/example.test.zone
CONF
cat > "$stage/DEBIAN/postinst" <<'POST'
#!/bin/sh
# hadns postinst: the system user, the sysctl drop-in, systemd's view of the
# unit. The service is not enabled or started: `systemctl enable --now hadns`.
set -e
if [ "$1" = configure ]; then
  if ! getent passwd hadns >/dev/null; then
    adduser --system --group --no-create-home --home /nonexistent \
      --gecos "hadns DNS/VRRP" hadns >/dev/null
  fi
  chgrp hadns /etc/hadns /etc/hadns/hadns.toml || true
  chmod 0750 /etc/hadns
  chmod 0640 /etc/hadns/hadns.toml
  if [ -x /usr/lib/systemd/systemd-sysctl ]; then
    /usr/lib/systemd/systemd-sysctl /usr/lib/sysctl.d/60-hadns.conf || true
  fi
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
  fi
fi
exit 0
POST
cat > "$stage/DEBIAN/postrm" <<'POST'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
fi
exit 0
POST
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/postrm"

size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CTRL
Package: hadns
Version: $version
Architecture: $arch
Maintainer: hadns developers <hadns@localhost>
Installed-Size: $size
Depends: libc6 (>= 2.34), adduser
Recommends: systemd
Section: net
Priority: optional
Homepage: https://github.com/hadns/hadns
Description: authoritative DNS with health-aware pools plus a VRRP engine
 hadns is one binary for dual-master hot standby: an authoritative DNS
 server that answers a pool name (equal or weighted) by the health of its
 members, and an embedded keepalived-compatible VRRP engine that keeps each
 pool address alive on one of the hosts.
CTRL

deb="$out/hadns_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
