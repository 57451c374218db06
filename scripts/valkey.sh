#!/usr/bin/env bash
# Builds valkey-server 8.1.1 (it takes `SET … IFEQ`, which the Redlock
# backend uses to complete a message with one command per node) from
# Debian's source archive, and prints the directory that holds it. Debian
# 12's own packages stop at Redis 7.0 and Valkey 8.0, which do not.
#
#   export PATH="$(scripts/valkey.sh):$PATH"
#
# The build (about a minute on two cores) is kept in $VALKEY_DIR (default
# ~/.cache/iniesta-valkey) and reused.
set -euo pipefail

version=8.1.1
tarball="valkey_${version}+dfsg1.orig.tar.xz"
url="http://deb.debian.org/debian/pool/main/v/valkey/valkey_${version}%2Bdfsg1.orig.tar.xz"
sha256=d9bbd82eecb82f359e649a0007ad3dc1b47cc15afa626348ca86b73c4ae2c7ee
dir="${VALKEY_DIR:-$HOME/.cache/iniesta-valkey}/$version"

if [ ! -x "$dir/bin/valkey-server" ]; then
  mkdir -p "$dir"
  cd "$dir"
  if ! echo "$sha256  $tarball" | sha256sum -c --status 2>/dev/null; then
    curl -fsSL -o "$tarball" "$url" >&2
    echo "$sha256  $tarball" | sha256sum -c --quiet >&2
  fi
  rm -rf src && mkdir src
  tar -xf "$tarball" -C src --strip-components=1
  # libc malloc and no TLS: nothing to install beyond gcc and make.
  make -C src -j"$(nproc)" MALLOC=libc BUILD_TLS=no valkey-server >build.log 2>&1 \
    || { tail -30 build.log >&2; exit 1; }
  mkdir -p bin
  cp src/src/valkey-server bin/
  rm -rf src
fi
echo "$dir/bin"
