/*
 * One instance of a samples/bpf/sockex1-like loader, for tools/sockex1-instances.sh: creates an
 * array map (256 x u64, as sockex1's my_map), loads a socket filter that counts bytes per IP
 * protocol into it (sockex1_kern.c's logic, written as raw instructions), attaches it to a UDP
 * socket with SO_ATTACH_BPF, then forks: the child keeps the program loaded until killed and
 * the parent prints the child's pid and exits, so a script can load instances one by one.
 * Needs root (or CAP_BPF + CAP_NET_ADMIN) and the bpf() syscall. Build: cc -O2 -o X sockex1-like.c
 */
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SO_ATTACH_BPF
#define SO_ATTACH_BPF 50
#endif

static long bpf(int cmd, union bpf_attr *attr) { return syscall(__NR_bpf, cmd, attr, sizeof(*attr)); }

#define INSN(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })

int main(void) {
  union bpf_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.map_type = BPF_MAP_TYPE_ARRAY;
  attr.key_size = 4;
  attr.value_size = 8;
  attr.max_entries = 256;
  int map = (int)bpf(BPF_MAP_CREATE, &attr);
  if (map < 0) { perror("BPF_MAP_CREATE"); return 1; }
  struct bpf_insn prog[] = {
    INSN(BPF_ALU64 | BPF_MOV | BPF_X, 6, 1, 0, 0),            /* r6 = skb */
    INSN(BPF_LD | BPF_ABS | BPF_B, 0, 0, 0, 14 + 9),          /* r0 = ip->protocol */
    INSN(BPF_STX | BPF_MEM | BPF_W, 10, 0, -4, 0),            /* *(u32 *)(fp - 4) = r0 */
    INSN(BPF_LD | BPF_DW | BPF_IMM, 1, BPF_PSEUDO_MAP_FD, 0, map), INSN(0, 0, 0, 0, 0),
    INSN(BPF_ALU64 | BPF_MOV | BPF_X, 2, 10, 0, 0),
    INSN(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -4),
    INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem),
    INSN(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 2, 0),
    INSN(BPF_LDX | BPF_MEM | BPF_W, 1, 6, 0, 0),              /* r1 = skb->len */
    INSN(BPF_STX | BPF_ATOMIC | BPF_DW, 0, 1, 0, BPF_ADD),    /* lock *(u64 *)r0 += r1 */
    INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0),
    INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
  };
  memset(&attr, 0, sizeof(attr));
  attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
  attr.insns = (uint64_t)(uintptr_t)prog;
  attr.insn_cnt = sizeof(prog) / sizeof(prog[0]);
  attr.license = (uint64_t)(uintptr_t)"GPL";
  int fd = (int)bpf(BPF_PROG_LOAD, &attr);
  if (fd < 0) { perror("BPF_PROG_LOAD"); return 1; }
  int sock = socket(AF_INET, SOCK_DGRAM, 0);
  if (sock < 0 || setsockopt(sock, SOL_SOCKET, SO_ATTACH_BPF, &fd, sizeof(fd)) < 0) { perror("SO_ATTACH_BPF"); return 1; }
  pid_t child = fork();
  if (child < 0) { perror("fork"); return 1; }
  if (child == 0) { for (;;) pause(); }
  printf("%d\n", (int)child);
  return 0;
}
