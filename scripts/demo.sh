#!/usr/bin/env bash
# The main job: install, generate the synthetic dataset, train Panoptic-DeepLab
# through the generated OM, evaluate (PQ), export, and print the result.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q --disable-pip-version-check torch==2.13.0 -e .
omgen compile specs/panoptic.yaml -q
# glibc hands large freed blocks back to the OS and faults them in again on the next
# step; keeping them makes batched OM passes as fast per image as batch 1
# (docs/benchmarks.md, "Panoptic-DeepLab OM").
export MALLOC_MMAP_MAX_="${MALLOC_MMAP_MAX_:-0}" MALLOC_TRIM_THRESHOLD_="${MALLOC_TRIM_THRESHOLD_:-68719476736}"
exec python -m train demo "$@"
