/**
 * The kernel's published htab-mem numbers that docs/benchmarks.md ("Next to the kernel's tables")
 * sets beside ours: table A of the htab-mem bench as merged (8-CPU KVM guest, `-w3 -d10 -p8`,
 * real RCU), three kinds of map, each next to the preset that models it. The kernel had 8
 * producers and real grace periods, the report has the machine's cores and emulated epochs: the
 * shapes compare (which is faster, which grows), not the absolute numbers.
 *
 * Who may call: anyone (constants).
 */
import type { PresetName } from '../../epoch/policy.js';

export interface KernelFigure {
  /** The kernel's kind of map. */
  readonly kernel: string;
  readonly perProdKops: number;
  readonly avgMiB: number;
  readonly peakMiB: number;
}

type HtabCase = 'overwrite' | 'batch_add_batch_del' | 'add_del_on_diff_cpu';

export const KERNEL_TABLE_A: Record<HtabCase, Partial<Record<PresetName, KernelFigure>>> = {
  overwrite: {
    'free-after-gp': {
      kernel: 'no bpf ma (kmalloc + call_rcu)',
      perProdKops: 11.24,
      avgMiB: 82.64,
      peakMiB: 119.18,
    },
    prealloc: { kernel: 'preallocated', perProdKops: 191.42, avgMiB: 1.24, peakMiB: 1.49 },
    'kernel-6.4': { kernel: 'normal bpf ma', perProdKops: 126.59, avgMiB: 2.26, peakMiB: 2.74 },
  },
  batch_add_batch_del: {
    'free-after-gp': {
      kernel: 'no bpf ma (kmalloc + call_rcu)',
      perProdKops: 18.45,
      avgMiB: 50.47,
      peakMiB: 94.96,
    },
    prealloc: { kernel: 'preallocated', perProdKops: 221.83, avgMiB: 1.23, peakMiB: 1.49 },
    'kernel-6.4': { kernel: 'normal bpf ma', perProdKops: 83.37, avgMiB: 2.14, peakMiB: 2.74 },
  },
  add_del_on_diff_cpu: {
    'free-after-gp': {
      kernel: 'no bpf ma (kmalloc + call_rcu)',
      perProdKops: 14.5,
      avgMiB: 4.64,
      peakMiB: 7.2,
    },
    prealloc: { kernel: 'preallocated', perProdKops: 39.66, avgMiB: 1.47, peakMiB: 1.75 },
    'kernel-6.4': { kernel: 'normal bpf ma', perProdKops: 21.25, avgMiB: 17.5, peakMiB: 28.87 },
  },
};

/** The kernel's figure beside `policy` in `useCase`, if table A has one. */
export function kernelFigure(useCase: string, policy: PresetName): KernelFigure | undefined {
  return (KERNEL_TABLE_A as Record<string, Partial<Record<PresetName, KernelFigure>>>)[useCase]?.[policy];
}
