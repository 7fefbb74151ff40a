#!/usr/bin/env bash
# Install Debian's chromium (for tests/test_doc_browser.py) when it is missing.
# Called by the CI test script; safe to run repeatedly. Needs root (or sudo).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    echo "chromium: already installed ($(/usr/bin/chromium --version 2>/dev/null || echo unknown version))"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "install-chromium.sh: not root and no sudo; the browser test will skip" >&2; exit 1; fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
# fonts-dejavu-extra has DejaVu Math TeX Gyre, the math font the sheets fall back to
$SUDO apt-get install -y --no-install-recommends chromium fonts-dejavu-core fonts-dejavu-extra
/usr/bin/chromium --version 2>/dev/null || true
