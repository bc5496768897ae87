#!/usr/bin/env bash
# Instructions per LIFO alloc+free pair, counted by callgrind (repeatable on a noisy machine,
# unlike timings): (count with N pairs − count with 1 pair) / N, for the arena and for a plain
# typed-array free list (VARIANTS picks: freelist; freelist-header, the same list writing and
# checking the arena's 8-byte header; arena = kernel-6.6; sheaves). Needs valgrind (Debian:
# apt-get install valgrind) and `npm run build`.
# V8 runs single-threaded so that JIT tiering is the same from run to run.
set -euo pipefail
cd "$(dirname "$0")"
pairs=${PAIRS:-2000000}
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null node --single-threaded lifo-loop.mjs "$1" "$2" 2>&1 |
    awk '/Collected/ { print $4 }'
}
echo "node $(node --version), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $pairs pairs"
for variant in ${VARIANTS:-freelist freelist-header arena sheaves}; do
  base=$(count "$variant" 1)
  total=$(count "$variant" "$pairs")
  echo "$variant: $(( (total - base) / pairs )) instructions per alloc+free pair"
done
