#!/usr/bin/env bash
# Install Debian's Chromium and its WebDriver for the web demo's browser test (tests/test_demo_browser.py) when they
# are missing and apt can install them (root, Debian's mirrors reachable). Never fails: without them that test skips.
# PERCEPTUAL_NO_BROWSER_INSTALL=1 turns it off; BROWSER_INSTALL_TIMEOUT (s, default 50) bounds the whole step.
set -uo pipefail
budget="${BROWSER_INSTALL_TIMEOUT:-50}"
if [[ "${PERCEPTUAL_NO_BROWSER_INSTALL:-0}" == 1 ]] || { command -v chromium && command -v chromedriver; } >/dev/null; then
  exit 0
fi
if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
  echo "no chromium: the browser test will skip (install Debian's chromium and chromium-driver to run it)"
  exit 0
fi
start=$SECONDS
left() { echo $((budget - (SECONDS - start))); }
if timeout "$(left)" apt-get update -qq >/dev/null 2>&1 &&
  DEBIAN_FRONTEND=noninteractive timeout "$(left)" apt-get install -y -qq --no-install-recommends \
    chromium chromium-driver >/dev/null 2>&1; then
  echo "installed chromium and chromium-driver in $((SECONDS - start)) s"
else
  echo "could not install chromium within ${budget} s: the browser test will skip"
fi
exit 0
