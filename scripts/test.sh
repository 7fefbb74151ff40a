#!/usr/bin/env bash
# Install the project with its test dependencies and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q --disable-pip-version-check torch==2.13.0 -e '.[test,doc]'
# panopticapi-lite packages COCO's reference PQ (a test oracle). Its metadata pins
# numpy<2, which would rebuild numpy from source; it runs fine on numpy 2, so
# install it without its dependencies (pillow and pycocotools come with omgen).
python -m pip install -q --disable-pip-version-check --no-deps panopticapi-lite
# Headless Chromium for the math-sheet browser test (Debian's package; no-op when present).
bash scripts/install-chromium.sh
for spec in specs/*.yaml specs/*.py specs/examples/*.yaml; do
  [ -f "$spec" ] || continue
  omgen compile "$spec" --check -q
done
set +e
python -m pytest -n 2 --dist loadgroup -q -p no:cacheprovider "$@"  # loadgroup: xdist_group tests share a worker
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$status"
