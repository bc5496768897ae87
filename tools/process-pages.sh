#!/bin/sh
# Pages one small, idle process takes from the page allocator: starts N `sleep` processes, waits
# for them to settle, and divides the drop in MemFree (/proc/meminfo) by N; also prints the
# unmovable kernel part (SUnreclaim + KernelStack + PageTables). The pack bench's physical model
# (src/benchmarks/pack-physical.ts) takes the first figure as the pages each loading process
# (a samples/bpf/sockex1 instance) allocates besides its program. Other processes on the machine
# move MemFree too: run it a few times and read the spread.
# Usage: tools/process-pages.sh [N]   (default 500)
set -eu
n=${1:-500}
field() { awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo; }
kernel() { echo $(( $(field SUnreclaim) + $(field KernelStack) + $(field PageTables) )); }
sleep 1
free0=$(field MemFree); kern0=$(kernel)
pids=""
i=0
while [ "$i" -lt "$n" ]; do
  sleep 600 &
  pids="$pids $!"
  i=$((i + 1))
done
sleep 3
free1=$(field MemFree); kern1=$(kernel)
# shellcheck disable=SC2086
kill $pids
wait 2>/dev/null || true
echo "processes: $n"
echo "MemFree drop per process: $(( (free0 - free1) / n )) KiB ($(( (free0 - free1) / n / 4 )) pages)"
echo "unmovable kernel memory per process (SUnreclaim + KernelStack + PageTables): $(( (kern1 - kern0) / n )) KiB"
