#!/usr/bin/env bash
# The dashboard test drives Debian's chromium with playwright (never a downloaded browser).
# Install it from Debian's packages when it is missing; fail loudly when that is impossible.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "chromium is missing and this user cannot install it: run 'sudo apt-get install -y chromium'" >&2
  exit 1
fi
echo "installing Debian's chromium for the dashboard test..."
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
command -v chromium >/dev/null
