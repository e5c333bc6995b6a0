#!/usr/bin/env bash
# Debian's Chromium for the browser tests; never a download of Playwright's own browser build.
set -uo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "warning: could not install chromium; browser tests will be skipped" >&2
else
  echo "warning: /usr/bin/chromium is missing and apt-get is not usable; browser tests will be skipped" >&2
fi
exit 0
