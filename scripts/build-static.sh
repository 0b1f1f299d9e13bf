#!/usr/bin/env bash
# Builds a statically linked release binary: dist/pikachu, runnable on any x86_64 Linux
# (also in a `scratch` or distroless image) without glibc, OpenSSL or zlib installed.
#
#   scripts/build-static.sh              builds and checks dist/pikachu
#   TARGET=x86_64-unknown-linux-musl scripts/build-static.sh
#                                        builds against musl instead (needs
#                                        `rustup target add x86_64-unknown-linux-musl`)
#
# The default links glibc statically (`-C target-feature=+crt-static`), because the
# glibc target is always installed and the musl one often is not. pikachu needs no
# OpenSSL (TLS is rustls + ring) and no system zlib, so nothing else is linked.
#
# Caveat of static glibc: host names are resolved by glibc's getaddrinfo, which in a
# static binary cannot load the NSS plugins named in /etc/nsswitch.conf (LDAP, mDNS,
# systemd-resolved's nss-resolve, ...). It still reads /etc/hosts and asks the servers
# in /etc/resolv.conf directly, which is all a container has. If your hosts resolve only
# through an NSS plugin, use an IP address in database.host, or build with musl.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

target=${TARGET:-x86_64-unknown-linux-gnu}
if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  # Without rustup (e.g. a distribution's cargo) only the host target exists.
  if command -v rustup >/dev/null 2>&1; then
    echo "build-static.sh: the Rust target $target is not installed: rustup target add $target" >&2
    exit 1
  fi
fi

# --target is what keeps build scripts and proc macros dynamic (they run on the build
# machine) while the final binary gets +crt-static.
echo "build-static.sh: cargo build --release --target $target (static)" >&2
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  cargo build --release --locked --bin pikachu --target "$target"

mkdir -p dist
cp "target/$target/release/pikachu" dist/pikachu

# ldd says "not a dynamic executable" (glibc) or "statically linked" (musl, some ldd
# versions); anything listing libraries means the build is not static.
linkage=$(ldd dist/pikachu 2>&1 || true)
case "$linkage" in
  *"not a dynamic executable"* | *"statically linked"*) ;;
  *)
    echo "build-static.sh: dist/pikachu is NOT static; ldd says:" >&2
    echo "$linkage" >&2
    exit 1
    ;;
esac
if command -v file >/dev/null 2>&1; then
  file -b dist/pikachu >&2
fi

./dist/pikachu version >/dev/null
size=$(stat -c %s dist/pikachu)
echo "build-static.sh: dist/pikachu is static, $size bytes ($((size / 1024 / 1024)) MiB), $(./dist/pikachu version)"
