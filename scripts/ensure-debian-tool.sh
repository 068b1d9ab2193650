#!/usr/bin/env bash
# ensure-debian-tool.sh COMMAND PACKAGE WHY
# Install Debian's PACKAGE when COMMAND is missing (the dashboard test drives Debian's chromium,
# never a downloaded browser; the serving benchmark drives both servers with wrk). Fail loudly
# when that is impossible.
set -euo pipefail
cmd=$1 pkg=$2 why=$3
if command -v "$cmd" >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "$cmd is missing and this user cannot install it: run 'sudo apt-get install -y $pkg'" >&2
  exit 1
fi
echo "installing Debian's $pkg for $why..."
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
command -v "$cmd" >/dev/null
