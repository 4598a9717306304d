#!/usr/bin/env bash
# Edge coverage per source file of Muster's own code (src/) that a fuzz
# target reaches from a corpus, from libFuzzer's -print_coverage=1:
#
#   fuzz/coverage.sh BINARY CORPUS_DIR...
#
# prints "covered/total edges  file" for each file under src/, and the sum.
# An edge is a branch of the control flow graph as SanitizerCoverage counts
# it; inline functions from headers count where they are defined.
set -euo pipefail
binary=$1
shift
"$binary" -runs=0 -print_coverage=1 "$@" 2>&1 |
  awk '/^(COVERED|UNCOVERED)_FUNC:/ {
         split($5, e, "/"); file = $NF; sub(/:[0-9]+$/, "", file)
         if (file !~ /\/src\//) next
         sub(/.*\/src\//, "src/", file)
         cov[file] += e[1]; tot[file] += e[2]; all_c += e[1]; all_t += e[2]
       }
       END {
         for (f in cov) printf "%5d/%-5d %5.1f%%  %s\n", cov[f], tot[f], 100 * cov[f] / tot[f], f
         printf "%5d/%-5d %5.1f%%  all of src/\n", all_c, all_t, all_t ? 100 * all_c / all_t : 0
       }' | sort -k3
