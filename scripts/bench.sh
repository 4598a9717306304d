#!/usr/bin/env bash
# Benchmarks: the musterd-versus-etcd load generator is not written yet.
set -euo pipefail
echo "make bench: not yet — the benchmark harness (bench/) is still to be built; nothing was measured."
