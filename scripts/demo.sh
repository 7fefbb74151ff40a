#!/usr/bin/env bash
# The main job: install, generate the synthetic dataset, train Panoptic-DeepLab
# through the generated OM, evaluate (PQ), export, and print the result.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q --disable-pip-version-check torch==2.13.0 -e .
omgen compile specs/panoptic.yaml -q
exec python -m train demo "$@"
