#!/usr/bin/env bash
# Benchmarks, run by `make bench` after the build. QUICK=1 for a short run.
#
#   pick_bench      Balancer::Pick per policy and instance count, 1/2/4 threads
#                   (bench/pick_bench.cc)
#   registry_bench  musterd (embedded store) against a single-member etcd
#                   (Debian's etcd-server): register, heartbeat, discover,
#                   watch fan-out, ..., and xDS fan-out (musterd alone: ADS
#                   streams and EDS pushes). Each scenario starts fresh servers on
#                   free 127.0.0.1 ports with temporary data directories
#                   (the harness starts and kills them itself). Prints one
#                   table and writes bench/results/latest.json.
#
# Figures, parameters and how to read them: docs/benchmarks.md.
# Extra arguments go to registry_bench (e.g. --only register,discover).
# BUILD_DIR picks the build (default build); ETCD the etcd binary.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
etcd_bin=${ETCD:-/usr/bin/etcd}

# Open files: 10,000 watchers are 10,000 sockets in the harness and as many
# in the server. Raise the soft limit to the hard one; the harness and the
# servers it starts inherit it.
soft=$(ulimit -Sn)
hard=$(ulimit -Hn)
if [[ "$soft" != "$hard" ]] && ulimit -n "$hard" 2>/dev/null; then
  echo "open files: raised the limit from $soft to $hard (the hard limit)"
else
  echo "open files: limit $(ulimit -n) (hard limit $hard; not raised further)"
fi

pick_args=()
bench_args=()
if [[ "${QUICK:-0}" == 1 ]]; then
  pick_args+=(--benchmark_min_time=0.01)
  bench_args+=(--quick)
fi

if [[ -x "$build_dir/pick_bench" ]]; then
  echo "== pick_bench: Balancer::Pick (ns per pick; see docs/benchmarks.md)"
  "$build_dir/pick_bench" "${pick_args[@]}"
else
  echo "pick_bench: not built ($build_dir/pick_bench is missing; is Google Benchmark installed?)"
fi

echo
if [[ ! -x "$build_dir/registry_bench" || ! -x "$build_dir/musterd" ]]; then
  echo "musterd vs etcd: not measured ($build_dir/registry_bench or $build_dir/musterd is missing)"
  exit 1
fi
if [[ ! -x "$etcd_bin" ]]; then
  echo "musterd vs etcd: not measured ($etcd_bin is missing; install Debian's etcd-server)"
  exit 1
fi
echo "== registry_bench: musterd vs etcd (see docs/benchmarks.md)"
"$build_dir/registry_bench" --musterd "$build_dir/musterd" --etcd "$etcd_bin" \
  --out bench/results/latest.json "${bench_args[@]}" "$@"
