#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine: installs what the tests need
# (MariaDB server and client for the integration tests, promtool from the prometheus
# package for the metrics format test), checks formatting and clippy, then runs every
# test target.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

. scripts/prereqs.sh
need_build_tools
need=()
command -v mariadbd >/dev/null 2>&1 || need+=(mariadb-server)
command -v mariadb >/dev/null 2>&1 || need+=(mariadb-client)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
# Throw-away certificates for the TLS tests.
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then apt_install "${need[@]}"; fi

# The habits CI keeps: formatted code, no clippy warning (Cargo.toml [lints] denies
# unwrap/expect outside tests and unsafe code).
for tool in rustfmt clippy-driver; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "scripts/test.sh: $tool is missing: rustup component add rustfmt clippy" >&2
        exit 1
    }
done
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets --no-fail-fast
