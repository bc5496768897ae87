#!/usr/bin/env bash
# Instructions per allocator operation (an alloc or a free) of htab-mem's two use cases'
# allocator traffic, with refills and trims inline and as irq_work (policy refillWork), counted
# by callgrind (repeatable on a loaded machine, unlike timings): (count with N programs − count
# with none) / (N × 128). Needs valgrind and `npm run build`; V8 runs single-threaded.
set -euo pipefail
cd "$(dirname "$0")"
runs=${RUNS:-20000}
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null node --single-threaded irq-work-loop.mjs "$1" "$2" "$3" 2>&1 |
    awk '/Collected/ { print $4 }'
}
echo "node $(node --version), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $runs programs of 128 operations"
for variant in inline irq-work; do
  for shape in overwrite batch; do
    base=$(count "$variant" "$shape" 0)
    total=$(count "$variant" "$shape" "$runs")
    echo "$variant $shape: $(( (total - base) / (runs * 128) )) instructions per operation"
  done
done
