#!/bin/sh
# Aaron Lu's direct-map experiment on this machine's own kernel (research/kernel.md §2.5), with a
# sockex1-like loader (tools/sockex1-like.c): loads N instances one after another, each a process
# holding one socket-filter program and its map, and prints after every quarter of N what
# /proc/meminfo and /proc/pagetypeinfo say: DirectMap4k, MemFree, the unmovable kernel memory
# (SUnreclaim + KernelStack + PageTables + VmallocUsed) and the pageblocks of type Unmovable
# (all zones). Then it kills the instances it started. Needs root, cc and the bpf() syscall.
# Other processes move these figures too: read differences, and run it more than once.
# Usage: tools/sockex1-instances.sh [N]   (default 2048)
set -eu
n=${1:-2048}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cc -O2 -o "$dir/sockex1-like" "$(dirname "$0")/sockex1-like.c"
field() { awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo; }
unmovable_blocks() { awk '/^Number of blocks type/ { on = 1; next } on && $1 == "Node" { s += $5 } END { print s + 0 }' /proc/pagetypeinfo; }
row() {
  echo "$1 $(field DirectMap4k) $(field DirectMap2M) $(field DirectMap1G) $(field MemFree)" \
    "$(( $(field SUnreclaim) + $(field KernelStack) + $(field PageTables) + $(field VmallocUsed) ))" \
    "$(unmovable_blocks)"
}
echo "instances DirectMap4k_kB DirectMap2M_kB DirectMap1G_kB MemFree_kB unmovable_kernel_kB unmovable_pageblocks"
row 0
: > "$dir/pids"
i=0
for q in 1 2 3 4; do
  upto=$(( n * q / 4 ))
  while [ "$i" -lt "$upto" ]; do
    "$dir/sockex1-like" >> "$dir/pids"
    i=$((i + 1))
  done
  sleep 1
  row "$i"
done
# shellcheck disable=SC2046
kill $(cat "$dir/pids")
sleep 1
row "after"
