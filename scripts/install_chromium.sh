#!/usr/bin/env bash
# Debian's Chromium for the browser tests; never a download of Playwright's own browser build.
# On a developer's machine a missing Chromium only skips the browser tests; under CI=true it fails the run.
set -uo pipefail
chromium="${CHROMIUM:-/usr/bin/chromium}"
if [ -x "$chromium" ]; then exit 0; fi
case "${CI:-}" in true|1|yes) strict=1 ;; *) strict=0 ;; esac
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null); then
    exit 0
  fi
  reason="could not install chromium with apt-get"
else
  reason="$chromium is missing and apt-get is not usable"
fi
if [ "$strict" = 1 ]; then
  echo "error: $reason; CI=true needs the browser tests, so the run stops here" >&2
  exit 1
fi
echo "warning: $reason; browser tests will be skipped" >&2
exit 0
