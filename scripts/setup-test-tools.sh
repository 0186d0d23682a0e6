#!/usr/bin/env bash
# Tools the test suite runs besides Python packages (those are pinned in pyproject's dev extras and
# installed by scripts/setup.sh). Idempotent: whatever is already present is skipped.
#   promtool, prometheus           Debian's `prometheus` package: `promtool check config|rules`, and a
#                                  real Prometheus that tests/api scrapes terse with
#   node + npm                     Debian's packages, for tests/deploy/crd (the ServiceMonitor CRD schema)
#   tests/deploy/crd/node_modules  `npm ci` from its package-lock.json (pinned): Prometheus Operator and KEDA CRD schemas
#   chromium, chromedriver         Debian's `chromium` and `chromium-driver`, for the playground's browser
#                                  test (tests/api/test_playground_browser.py; Selenium drives them, no downloads)
#   .venv-litellm                  a LiteLLM proxy (litellm[proxy], pinned) in its own virtualenv (its pins
#                                  are not ours), for tests/api/test_litellm_gateway.py
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" = "0" ] || SUDO="sudo"
APT_UPDATED=0
apt_install() {
  # apt_install PACKAGE... : install Debian packages without recommends, updating the lists once.
  if [ "$APT_UPDATED" = "0" ]; then
    $SUDO apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@"
}

# promtool (prometheus package). Its postinst may try to start a service; none runs without systemd.
# The prometheus server itself: tests/api/test_metrics.py starts one on a loopback port to scrape terse.
{ command -v promtool && command -v prometheus; } >/dev/null 2>&1 || apt_install prometheus

# node and npm for the CRD schema check.
command -v node >/dev/null 2>&1 || apt_install nodejs
command -v npm >/dev/null 2>&1 || apt_install npm

# A headless browser for the playground page's end-to-end test.
{ [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; } || apt_install chromium chromium-driver

# The CRD schema packages, exactly as locked. Reinstalled only when the lock file changes.
CRD=tests/deploy/crd
if ! cmp -s "$CRD/package-lock.json" "$CRD/node_modules/.terse-lock" 2>/dev/null; then
  (cd "$CRD" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$CRD/package-lock.json" "$CRD/node_modules/.terse-lock"
fi

# LiteLLM proxy: 1.106.12 is the newest release whose `proxy` extra resolves from the package index.
# Reinstalled only when the pinned version changes (the stamp names it).
LITELLM_VERSION=1.106.12
LITELLM_VENV="${LITELLM_VENV:-.venv-litellm}"
if [ ! -f "$LITELLM_VENV/.terse-litellm-$LITELLM_VERSION" ]; then
  rm -rf "$LITELLM_VENV"
  "${PYTHON:-python3}" -m venv "$LITELLM_VENV"
  "$LITELLM_VENV/bin/pip" install --quiet --disable-pip-version-check "litellm[proxy]==$LITELLM_VERSION"
  touch "$LITELLM_VENV/.terse-litellm-$LITELLM_VERSION"
fi

echo "terse test tools: promtool $(promtool --version 2>&1 | head -1 | awk '{print $3}'), node $(node --version)," \
  "chromedriver $(chromedriver --version | awk '{print $2}'), litellm $LITELLM_VERSION"
