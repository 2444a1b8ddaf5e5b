#!/usr/bin/env bash
# The Debian packages the tests need, installed when missing (make test runs this first):
# PostgreSQL's and Redis's server binaries (tests start their own servers on loopback; Debian's
# packages do not start a service here) and chromium (the headless browser of the UI test, driven
# by Playwright without a browser download).
set -euo pipefail

missing=()
if ! command -v initdb > /dev/null && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null; then
  missing+=(postgresql)
fi
if ! command -v redis-server > /dev/null; then
  missing+=(redis-server)
fi
if ! command -v chromium > /dev/null; then
  missing+=(chromium)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

echo "==> installing Debian packages the tests need: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}" > /dev/null
