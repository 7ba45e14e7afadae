#!/usr/bin/env bash
# Set up, then start the whole service on loopback: Azurite, the Functions app (HTTP APIs and portal on
# http://127.0.0.1:7071, blob/queue/timer triggers) and the training and export job launchers. One training
# execution is kept started and imported, waiting for the next request (devhost/jobs.py: a standby job).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# glibc gives each thread that contends for the heap its own arena (up to 8 per core), and what the 40 request
# threads free in one is not reused by another: two arenas keep the host's memory from creeping up with use.
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
exec .venv/bin/python -m devhost --host 127.0.0.1 --port "${SEER_PORT:-7071}" \
  --standby-job "training=.venv/bin/python -m training_job --wait 600" \
  --job "exports=.venv/bin/python -m training_job.exports" "$@"
