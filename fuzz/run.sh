#!/usr/bin/env bash
# Runs one libFuzzer target over its seed corpus (fuzz/corpus/NAME) with its
# dictionary (fuzz/NAME.dict, if any). CTest calls it (fuzz/CMakeLists.txt):
#
#   run.sh BINARY NAME BUILDDIR RUNS
#
# By default RUNS runs with seed 1 from a fresh BUILDDIR/fuzz-smoke/NAME: the
# same runs every time (make test). With MUSTER_FUZZ_SECONDS=S it fuzzes for
# S seconds instead, and the corpus grows in BUILDDIR/fuzz-work/NAME/corpus
# from one run to the next (make fuzz).
#
# New inputs go to the work directory's corpus/, never into the source tree;
# crashes and property violations to its findings/. libFuzzer's output is
# kept in its last.log, and a one-line summary (executions, rate, coverage)
# in its summary.
set -euo pipefail
binary=$1 name=$2 builddir=$3 runs=$4
here=$(cd "$(dirname "$0")" && pwd)
if [ -n "${MUSTER_FUZZ_SECONDS:-}" ]; then
  dir=$builddir/fuzz-work/$name
  limits=(-max_total_time="$MUSTER_FUZZ_SECONDS")
else
  dir=$builddir/fuzz-smoke/$name
  rm -rf "$dir"
  limits=(-runs="$runs" -seed=1)
fi
mkdir -p "$dir/corpus" "$dir/findings"
args=("${limits[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
      -artifact_prefix="$dir/findings/")
[ -f "$here/$name.dict" ] && args+=(-dict="$here/$name.dict")
# UBSan reports are errors (the build sets -fno-sanitize-recover too).
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
status=0
corpora=("$dir/corpus")
[ -d "$here/corpus/$name" ] && corpora+=("$here/corpus/$name")
"$binary" "${args[@]}" "${corpora[@]}" >"$dir/last.log" 2>&1 || status=$?
if [ $status -ne 0 ]; then
  tail -n 60 "$dir/last.log"
  echo "run.sh: $name failed ($status); inputs in $dir/findings/" >&2
  exit $status
fi
# One line per run for the record: executions, rate, coverage, corpus.
{
  echo -n "$name: "
  grep -E '^#[0-9]+' "$dir/last.log" | tail -n 1 | tr '\n' ' '
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' \
    "$dir/last.log" | sed 's/^stat:://' | tr '\n' ' '
  echo
} | tee "$dir/summary"
