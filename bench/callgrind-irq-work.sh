#!/usr/bin/env bash
# Does running refill and trim as irq_work make batch_add_batch_del slower than overwrite, as in
# the kernel's htab-mem table A (0.66×)? Instructions counted by callgrind (repeatable on a loaded
# machine, unlike timings), (count with N programs − count with none) / N, under kernel-6.4 with
# refills and trims inline and as irq_work (policy refillWork), for
#   - the allocator alone (bench/irq-work-loop.mjs): instructions per alloc or free;
#   - htab-mem's program loop on one CPU (bench/htab-loop.mjs): instructions per program, and
#     batch ÷ overwrite in per-prod-op terms (a batch program counts 2, as the kernel counts it).
# Needs valgrind and `npm run build`; V8 runs single-threaded.
set -euo pipefail
cd "$(dirname "$0")"
runs=${RUNS:-20000}
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null node --single-threaded "$@" 2>&1 |
    awk '/Collected/ { print $4 }'
}
per() { # script variant shape → instructions per program
  local base total
  base=$(count "$1" "$2" "$3" 0)
  total=$(count "$1" "$2" "$3" "$runs")
  echo $(( (total - base) / runs ))
}
echo "node $(node --version), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $runs programs per count"
for variant in inline irq-work; do
  over=$(per irq-work-loop.mjs "$variant" overwrite)
  batch=$(per irq-work-loop.mjs "$variant" batch)
  echo "allocator alone, $variant: overwrite $(( over / 128 )), batch $(( batch / 128 )) instructions per operation"
done
for variant in inline irq-work; do
  over=$(per htab-loop.mjs "$variant" overwrite)
  batch=$(per htab-loop.mjs "$variant" batch)
  ratio=$(awk -v o="$over" -v b="$batch" 'BEGIN { printf "%.2f", o / (b / 2) }')
  echo "htab-mem loop, $variant: overwrite $over, batch $batch instructions per program; batch ÷ overwrite per-prod-op ${ratio}× (kernel 0.66×)"
done
