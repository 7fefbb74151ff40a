#!/usr/bin/env bash
# Install the project with its test dependencies and run the whole test suite.
#
# Everything is installed into .venv inside the checkout (reused when it is there), so every run also proves
# the suite does not depend on where the checkout or its environment lives: the environment's path starts
# with the checkout's. Installer output goes to .venv/install.log (printed only when a step fails).
# OMGEN_VENV=DIR picks another environment folder; arguments are passed to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${OMGEN_VENV:-.venv}"
LOG="$VENV/install.log"

step() {  # step "what" command...: run quietly, show the log's tail if it fails
  local what="$1"; shift
  echo "test.sh: $what" >&2
  if ! "$@" >>"$LOG" 2>&1; then
    echo "test.sh: $what failed; the last lines of $LOG:" >&2
    tail -n 40 "$LOG" >&2
    exit 1
  fi
}

if [ ! -x "$VENV/bin/python" ]; then
  python -m venv "$VENV"
fi
: >"$LOG"
PY="$VENV/bin/python"
export PATH="$PWD/$VENV/bin:$PATH"  # the console scripts (omgen, omgen-train) the tests call
step "installing omgen with its test dependencies into $VENV" \
  "$PY" -m pip install -q --disable-pip-version-check torch==2.13.0 -e '.[test,doc]'
# panopticapi-lite packages COCO's reference PQ (a test oracle). Its metadata pins
# numpy<2, which would rebuild numpy from source; it runs fine on numpy 2, so
# install it without its dependencies (pillow and pycocotools come with omgen).
step "installing panopticapi-lite (test oracle)" \
  "$PY" -m pip install -q --disable-pip-version-check --no-deps panopticapi-lite
# Headless Chromium for the math-sheet browser test (Debian's package; no-op when present).
step "checking for headless Chromium" bash scripts/install-chromium.sh
echo "test.sh: checking generated/ is what the specs compile to" >&2
for spec in specs/*.yaml specs/*.py specs/examples/*.yaml; do
  [ -f "$spec" ] || continue
  "$VENV/bin/omgen" compile "$spec" --check -q
done
set +e
# loadgroup: tests of one xdist_group share a worker (one C++ build, one AOTInductor compile)
"$PY" -m pytest -n 2 --dist loadgroup -q -p no:cacheprovider --durations=10 "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$status"
