#!/usr/bin/env bash
# Benchmarks, run by `make bench` after the build. QUICK=1 for a short run.
#
#   pick_bench   Balancer::Pick per policy and instance count, 1/2/4 threads
#                (bench/pick_bench.cc; figures and how to read them in
#                docs/benchmarks.md)
#
# The musterd-versus-etcd load generator is not written yet.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}

args=()
if [[ "${QUICK:-0}" == 1 ]]; then
  args+=(--benchmark_min_time=0.01)
fi

if [[ -x "$build_dir/pick_bench" ]]; then
  echo "== pick_bench: Balancer::Pick (ns per pick; see docs/benchmarks.md)"
  "$build_dir/pick_bench" "${args[@]}" "$@"
else
  echo "pick_bench: not built ($build_dir/pick_bench is missing; is Google Benchmark installed?)"
fi

echo
echo "musterd vs etcd: not yet — the registry load generator (bench/) is still to be built; nothing was measured."
