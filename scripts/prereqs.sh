# Sourced by scripts/test.sh and scripts/demo.sh: what a fresh Debian machine lacks.
#   need_build_tools   a Rust toolchain new enough (clear error: it cannot come from apt)
#                      and a C compiler (installed with apt-get when missing)
#   apt_install PKG…   apt-get install without starting any service the package ships

apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "$(basename "$0"): installing $* with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >/dev/null
  # Installing packages must not start the system's own services (a second MariaDB).
  local policy=/usr/sbin/policy-rc.d created=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod +x "$policy"
    created=1
  fi
  $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  if [ "$created" = 1 ]; then $sudo rm -f "$policy"; fi
}

need_build_tools() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "$(basename "$0"): cargo not found. pikachu needs Rust 1.89 or newer: install it with" \
      "rustup (https://rustup.rs); Debian's own cargo package is too old." >&2
    exit 1
  fi
  local v
  v=$(rustc --version 2>/dev/null | awk '{print $2}')
  if [ -n "$v" ] && [ "$(printf '%s\n1.89.0\n' "$v" | sort -V | head -1)" != "1.89.0" ]; then
    echo "$(basename "$0"): rustc $v is too old; pikachu needs 1.89 or newer (rustup update)." >&2
    exit 1
  fi
  # ring, zstd and mimalloc compile bundled C sources.
  if ! command -v cc >/dev/null 2>&1; then apt_install gcc libc6-dev; fi
}
