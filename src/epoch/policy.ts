/**
 * Reuse policies: when a freed unit may be reused, where a remote free goes, how caches share,
 * how much they hold; and the presets that name the combinations the kernel and its proposed
 * fixes use (kernel/bpf/memalloc.c with 0893d6007db5, 822fb26bdb55, 04fabf00b4d3 and 5af6807bdb10,
 * https://git.kernel.org/torvalds/c/<id>; Hou Tao's reuse-after-GP RFCs, bpf list, Apr–Jun 2023:
 * https://lore.kernel.org/bpf/?q=BPF_MA_REUSE_AFTER_RCU_GP).
 *
 * ```
 *                 free()                 freeRcu()            free_llist > high (trim)      after the rcu GP        after the ttrace GP
 * kernel-6.1      own free list          rcu lists            own ttrace lists              ttrace lists of tgt      slab
 * kernel-6.4      own free list          rcu lists            own ttrace lists              ttrace lists of tgt      slab; refill reuses the unsealed ttrace list first
 * kernel-6.6      own free list          rcu lists            ttrace lists of tgt (hint)    ttrace lists of tgt      slab; refill reuses the ttrace lists first
 * kernel-free-rcu = freeRcu()            rcu lists            ttrace lists of tgt           ttrace lists of tgt      slab; refill reuses the ttrace lists first
 * reuse-after-gp  rcu lists              rcu lists            own ttrace lists              own free list            slab; refill reuses the ttrace lists first
 * free-after-gp   rcu lists              rcu lists            (never: free list only refills) slab                  —
 * prealloc        own free list          rcu lists            never (the pool only grows)   ttrace lists             slab
 * sheaves-rcu     rcu_free sheaf         rcu_free sheaf       (as sheaves)                  barn (a full sheaf)      —
 * sheaves         main sheaf             rcu_free sheaf       (no trims: spare, barn, slab) —                        —; src/cpu/sheaf.ts
 * arena           rcu lists              rcu lists            depot, else slab (cap 8 × high; idle: slab) own free list  —; remote frees go to the owner's rcu lists
 * arena-sheaves   rcu_free sheaf         rcu_free sheaf       (as sheaves)                  its CPU's main at a miss (unused: barn) —
 * nolock          main sheaf (trylocks;  rcu lists            (as sheaves; never flushes:   —                        —; kmalloc_nolock/kfree_nolock
 *                 else deferred)                              the deferred list instead)
 * ```
 * "tgt" is the kernel's hint: the owner of the unit whose free triggered the trim (one field per
 * cache, "the hint is not accurate"). Reusing the ttrace lists is the kernels' shortcut (the
 * list not yet handed to call_rcu since 0893d6007db5, kernel 6.2; the one waiting for the GP too
 * since 04fabf00b4d3, kernel 6.6): units that wait for the tasks-trace GP go back to the free
 * list before it ends.
 * It is safe only where every unit on those lists already passed an rcu GP (reuse-after-gp,
 * kernel-free-rcu); under kernel-6.6 it is the immediate reuse that breaks RCU readers.
 *
 * Who may call: anyone; pure functions. The policy is encoded in the arena header (H_POLICY),
 * immutable after `Arena.create`.
 */
import { fail } from '../shm/errors.js';

/** When a freed unit may be handed out again. */
export type ReuseChoice = 'immediate' | 'after-gp' | 'free-after-gp';
/**
 * Where a free of a unit another CPU allocated goes: into the freeing CPU's cache (`local`; its
 * overflow goes to the slab), the overflow to the last freed unit's owner (`hint`, kernel 6.6's
 * c->tgt), or every such unit back to its owner (`owner`: mimalloc's and snmalloc's remote
 * frees; buffered per owner and posted a batch at a time; needs a deferring reuse choice, whose
 * frees all take the slow path where the owner is read).
 */
export type RemoteFreeChoice = 'local' | 'hint' | 'owner';
/**
 * How caches share units besides the slab: not at all, or through a depot of whole batches
 * (src/cpu/depot.ts): trims park there, refills take from there before the slab. Needs trims that
 * go to the slab (trimVia 'slab'): a parked unit is reusable at once.
 */
export type SharingChoice = 'none' | 'depot';
/**
 * How many free units a cache keeps: the kernel's watermarks, unbounded (a pre-allocated pool),
 * or adaptive (tcmalloc's per-CPU capacity control): under immediate reuse the watermarks grow
 * while overflow and underflow alternate; under a deferring reuse a batch that passed its GP
 * stays whole on the free list (up to ADAPTIVE_MAX_SCALE × high) instead of being trimmed at
 * once. Either way a class that goes quiet for a coordinator tick gives its units back (timely
 * return, src/cpu/cpu.ts).
 */
export type CapacityChoice = 'fixed' | 'unbounded' | 'adaptive';

/**
 * Who drives grace periods: the coordinator on the main thread, rung with a futex wake when a
 * CPU seals a batch (the kernel's RCU machinery), or the CPUs themselves: a CPU whose batch
 * waits tries the advance at each look (crossbeam-epoch's collector) and rings the coordinator
 * only for a lone batch (it may go quiet after it); the coordinator's tick is the backstop.
 */
export type GpDriveChoice = 'coordinator' | 'cpus';

/**
 * What a CPU caches freed units in: the kernel's bpf_mem_cache linked lists, or SLUB sheaves
 * (mm/slub.c, kernel 6.18/7.0; src/cpu/sheaf.ts): per CPU a main and a spare array of unit
 * pointers and an rcu_free array for freeRcu, exchanged whole with a barn (src/cpu/barn.ts).
 */
export type CacheChoice = 'lists' | 'sheaves';

/** A policy: six choices and the kernels' details. */
export interface Policy {
  readonly reuse: ReuseChoice;
  readonly remoteFree: RemoteFreeChoice;
  readonly sharing: SharingChoice;
  readonly capacity: CapacityChoice;
  readonly gpDrive: GpDriveChoice;
  /** Where a trim (free_bulk) sends the overflow: the slab at once, or the ttrace lists first. */
  readonly trimVia: 'slab' | 'ttrace';
  /**
   * Refill takes units from the ttrace lists before the slab, reusing them before their ttrace
   * GP: 'none' (kernel 6.1), 'unsealed' (the list not yet waiting for a GP: 0893d6007db5,
   * kernels 6.2–6.5), 'all' (both lists: 04fabf00b4d3, kernel 6.6).
   */
  readonly refillFromTtrace: 'none' | 'unsealed' | 'all';
  /** Where a unit goes once its rcu GP passed: the kernel's ttrace lists, or the free list (Hou Tao). */
  readonly afterRcuGp: 'ttrace' | 'free-list' | 'slab';
  /**
   * When a refill or trim runs: in the call that crosses the watermark (`inline`), or as the
   * kernel's irq_work (`irq-work`): the crossing only raises the work, which runs on the same CPU
   * before its next allocation or free of that class (where the kernel's self-interrupt fires,
   * once the raising call re-enables interrupts), or at its next `poll()` or doorbell, and
   * decides from the count it finds then (bpf_mem_refill). Immediate-reuse policies only.
   * @defaultValue 'inline'
   */
  readonly refillWork?: 'inline' | 'irq-work';
  /** Lists (bpf_mem_alloc) or sheaves (SLUB, 7.0); sheaves need reuse 'immediate'. */
  readonly cache: CacheChoice;
  /**
   * Objects per sheaf: 0 for the kernel's formula by unit size (60 below 256 B, 28 below 1 KiB,
   * 12 below 4 KiB, else 4: calculate_sheaf_capacity), or 1..60.
   */
  readonly sheafCapacity: number;
  /**
   * Where a sheaves CPU frees a unit another CPU allocated: into its own main sheaf, or straight
   * to the slab around the sheaves (the kernel's rule for remote-node objects, 989b09b73978).
   */
  readonly sheafRemoteFree: 'sheaf' | 'slab';
  /**
   * What a sealed rcu_free sheaf becomes once its GP has passed: a full sheaf in the barn, or
   * flushed to the slab when the barn holds 10 (`barn`: the kernel's rcu_free_sheaf), or it
   * stays on its CPU and becomes the main sheaf at the CPU's next alloc miss (`cpu`: ours, the
   * arena preset; a CPU keeps at most two sheaves past their GP and passes older ones to the
   * barn, so a CPU that only frees feeds the ones that allocate). Needs reuse 'after-gp'.
   * @defaultValue 'barn'
   */
  readonly sheafReady?: 'barn' | 'cpu';
  /**
   * How a sheaves CPU takes the barn and slab locks: it waits for them (`wait`: kmalloc/kfree),
   * or only tries them (`try`: kmalloc_nolock/kfree_nolock, 6.18 on 7.0's sheaves). Under `try`
   * an alloc miss swaps the spare or tries a barn exchange, then one unit from the slab under a
   * trylock (never a whole refill), then once the next size class; it returns 0 instead of
   * waiting. A free overflow swaps the spare or tries the barn; it never flushes or allocates a
   * sheaf, and a free that finds no room goes onto the CPU's deferred list (defer_free), which
   * the CPU drains at its next safe point (`poll()`, its doorbell) and opportunistically once a
   * batch collects. freeRcu takes the per-object deferred lists (no kfree_rcu batching). Needs
   * cache 'sheaves' and reuse 'immediate'.
   * @defaultValue 'wait'
   */
  readonly sheafLocks?: 'wait' | 'try';
}

export const PRESET_NAMES = [
  'kernel-6.1',
  'kernel-6.4',
  'kernel-6.6',
  'kernel-free-rcu',
  'reuse-after-gp',
  'free-after-gp',
  'prealloc',
  'arena',
  'sheaves',
  'sheaves-rcu',
  'arena-sheaves',
  'nolock',
] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

const kernel61: Policy = {
  cache: 'lists',
  sheafCapacity: 0,
  sheafRemoteFree: 'sheaf',
  sheafReady: 'barn',
  sheafLocks: 'wait',
  reuse: 'immediate',
  remoteFree: 'local',
  sharing: 'none',
  capacity: 'fixed',
  gpDrive: 'coordinator',
  trimVia: 'ttrace',
  refillFromTtrace: 'none',
  afterRcuGp: 'ttrace',
  refillWork: 'inline',
};
const kernel64: Policy = { ...kernel61, refillFromTtrace: 'unsealed' };
const kernel66: Policy = { ...kernel61, remoteFree: 'hint', refillFromTtrace: 'all' };
const sheaves: Policy = { ...kernel61, cache: 'sheaves', trimVia: 'slab', afterRcuGp: 'slab' };
const reuseAfterGp: Policy = {
  ...kernel61,
  reuse: 'after-gp',
  refillFromTtrace: 'all',
  afterRcuGp: 'free-list',
};

export const PRESETS: Readonly<Record<PresetName, Policy>> = Object.freeze({
  'kernel-6.1': kernel61,
  // 0893d6007db5 (Dec 2022): alloc_bulk reuses the trimmed units not yet handed to call_rcu;
  // the allocator the htab-mem bench was merged against (the table in the bench's commit,
  // https://git.kernel.org/torvalds/c/fd283ab196a8).
  'kernel-6.4': kernel64,
  'kernel-6.6': kernel66,
  // bpf_mem_free_rcu() everywhere: the kernel 6.6 code with every free deferred by one rcu GP.
  'kernel-free-rcu': { ...kernel66, reuse: 'after-gp' },
  // Hou Tao's BPF_MA_REUSE_AFTER_RCU_GP (RFC v2, on v6.3: no hint yet).
  'reuse-after-gp': reuseAfterGp,
  // Hou Tao's BPF_MA_FREE_AFTER_RCU_GP (RFC v3).
  'free-after-gp': { ...kernel61, reuse: 'free-after-gp', trimVia: 'slab', afterRcuGp: 'slab' },
  // pcpu_freelist of the pre-allocated hash map: every element stays in a per-CPU pool.
  prealloc: { ...kernel61, capacity: 'unbounded', trimVia: 'slab' },
  // Ours: reuse only after an rcu GP, remote frees back to their owner, batches that passed
  // their GP kept whole and given back when the CPU goes quiet; trims go straight to the slab
  // (every unit on a free list already passed its GP).
  arena: {
    ...reuseAfterGp,
    remoteFree: 'owner',
    sharing: 'depot',
    capacity: 'adaptive',
    gpDrive: 'cpus',
    trimVia: 'slab',
    refillFromTtrace: 'none',
  },
  // The kernel 7.0 slab as BPF would see it if bpf_mem_alloc were replaced by it: free is kfree
  // into the main sheaf (immediate reuse), freeRcu is kfree_rcu into the rcu_free sheaf.
  sheaves,
  // The same slab with every free as kfree_rcu: into the rcu_free sheaf, reused a whole sheaf at
  // a time from the barn after its GP (the comparison kernel-free-rcu is to kernel-6.6).
  'sheaves-rcu': { ...kernel61, cache: 'sheaves', trimVia: 'slab', afterRcuGp: 'slab', reuse: 'after-gp' },
  // Ours on sheaves: every free waits for an rcu GP in the rcu_free sheaf, and a sheaf past its
  // GP becomes its CPU's main sheaf whole (no barn bound, no slab round trip); older ones feed
  // the barn; a class that goes quiet gives its sheaves back (capacity 'adaptive').
  'arena-sheaves': {
    ...kernel61,
    cache: 'sheaves',
    trimVia: 'slab',
    afterRcuGp: 'slab',
    reuse: 'after-gp',
    sheafReady: 'cpu',
    capacity: 'adaptive',
    gpDrive: 'cpus',
  },
  // kmalloc_nolock/kfree_nolock on 7.0's sheaves (what BPF local storage moved to in 6.19):
  // trylocks only, allocations that may fail, frees that may be deferred.
  nolock: { ...sheaves, sheafLocks: 'try' },
});

export const DEFAULT_PRESET: PresetName = 'kernel-6.6';

const choices: { readonly [K in keyof Policy]: readonly unknown[] } = {
  reuse: ['immediate', 'after-gp', 'free-after-gp'],
  remoteFree: ['local', 'hint', 'owner'],
  sharing: ['none', 'depot'],
  capacity: ['fixed', 'unbounded', 'adaptive'],
  gpDrive: ['coordinator', 'cpus'],
  trimVia: ['slab', 'ttrace'],
  refillFromTtrace: ['none', 'unsealed', 'all'],
  afterRcuGp: ['ttrace', 'free-list', 'slab'],
  refillWork: ['inline', 'irq-work'],
  cache: ['lists', 'sheaves'],
  sheafCapacity: Array.from({ length: 61 }, (_, k) => k),
  sheafRemoteFree: ['sheaf', 'slab'],
  sheafReady: ['barn', 'cpu'],
  sheafLocks: ['wait', 'try'],
};

/** Resolves a preset name or a policy object (missing fields from kernel-6.6); throws EINVAL. */
export function resolvePolicy(policy: PresetName | Partial<Policy> | undefined): Policy {
  if (policy === undefined) return PRESETS[DEFAULT_PRESET];
  if (typeof policy === 'string') {
    if (!Object.hasOwn(PRESETS, policy)) {
      fail('EINVAL', `options.policy: unknown preset '${policy}' (one of ${PRESET_NAMES.join(', ')})`);
    }
    return PRESETS[policy];
  }
  if (policy === null || typeof policy !== 'object') {
    fail('EINVAL', 'options.policy must be a preset name or a policy object');
  }
  const resolved = { ...PRESETS[DEFAULT_PRESET], ...policy } as Policy;
  for (const key of Object.keys(resolved) as (keyof Policy)[]) {
    const allowed = choices[key];
    if (allowed === undefined) fail('EINVAL', `options.policy: unknown field '${key}'`);
    if (!allowed.includes(resolved[key])) {
      // The one numeric field is a range: 61 listed integers would bury the answer.
      const expected =
        key === 'sheafCapacity'
          ? `an integer from 0 (the kernel's capacity for the unit size) to ${allowed.length - 1}`
          : `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`;
      fail('EINVAL', `options.policy.${key}: ${JSON.stringify(resolved[key])} is not ${expected}`);
    }
  }
  if (resolved.remoteFree === 'owner' && resolved.reuse === 'immediate') {
    // Immediate frees stay on the fast path, which does not read the owner.
    fail('EINVAL', "options.policy: remoteFree 'owner' needs reuse 'after-gp' or 'free-after-gp'");
  }
  if (resolved.sharing === 'depot' && resolved.trimVia !== 'slab') {
    fail(
      'EINVAL',
      "options.policy: sharing 'depot' needs trimVia 'slab' (parked units are reusable at once)",
    );
  }
  if (resolved.capacity === 'adaptive' && resolved.reuse === 'free-after-gp') {
    fail(
      'EINVAL',
      "options.policy: capacity 'adaptive' keeps reusable units; reuse 'free-after-gp' has none",
    );
  }
  if (resolved.refillWork === 'irq-work' && resolved.reuse !== 'immediate') {
    fail(
      'EINVAL',
      "options.policy: refillWork 'irq-work' models the kernel presets: it needs reuse 'immediate'",
    );
  }
  if (resolved.refillWork === 'irq-work' && resolved.cache === 'sheaves') {
    fail('EINVAL', "options.policy: refillWork 'irq-work' models bpf_mem_alloc's lists, not sheaves");
  }
  if (resolved.cache === 'sheaves' && (resolved.reuse === 'free-after-gp' || resolved.sharing !== 'none')) {
    fail(
      'EINVAL',
      "options.policy: cache 'sheaves' needs reuse 'immediate' or 'after-gp' (every free through the rcu_free sheaf) and sharing 'none'",
    );
  }
  if (resolved.cache === 'sheaves' && resolved.remoteFree === 'owner') {
    fail(
      'EINVAL',
      "options.policy: cache 'sheaves' takes remote frees into the sheaves or the slab (sheafRemoteFree), not 'owner'",
    );
  }
  if (resolved.sheafReady === 'cpu' && (resolved.cache !== 'sheaves' || resolved.reuse !== 'after-gp')) {
    fail(
      'EINVAL',
      "options.policy: sheafReady 'cpu' keeps rcu_free sheaves on their CPU: it needs cache 'sheaves' and reuse 'after-gp'",
    );
  }
  if (resolved.sheafLocks === 'try' && (resolved.cache !== 'sheaves' || resolved.reuse !== 'immediate')) {
    fail(
      'EINVAL',
      "options.policy: sheafLocks 'try' models kmalloc_nolock on sheaves: it needs cache 'sheaves' and reuse 'immediate'",
    );
  }
  if (resolved.reuse === 'free-after-gp' && resolved.afterRcuGp !== 'slab') {
    fail(
      'EINVAL',
      "options.policy: reuse 'free-after-gp' sends units to the slab after the GP (afterRcuGp 'slab')",
    );
  }
  return resolved;
}

/** The name of the first preset equal to `policy`, or undefined. */
export function presetOf(policy: Policy): PresetName | undefined {
  if (policy === null || typeof policy !== 'object') fail('EINVAL', 'presetOf(policy) needs a policy object');
  return PRESET_NAMES.find((name) => sameChoices(PRESETS[name], policy));
}

function sameChoices(a: Policy, b: Policy): boolean {
  return (Object.keys(choices) as (keyof Policy)[]).every((k) => a[k] === b[k]);
}

/**
 * Bits of H_POLICY (encodePolicy writes them once at create; readPolicyWord decodes them once per
 * handle). Reuse is the index of the choice in `choices.reuse`.
 */
const P_REUSE_MASK = 3;
const P_REUSE_IMMEDIATE = 0;
const P_HINT = 1 << 2;
const P_UNBOUNDED = 1 << 3;
/** Adaptive capacity (the watermarks scale per CPU and class; src/cpu/cpu.ts). */
const P_ADAPTIVE = 1 << 9;
/** Remote frees go back to their owner (src/cpu/deferred.ts). */
const P_OWNER = 1 << 10;
/** Trims park whole batches in the depot (src/cpu/depot.ts). */
const P_DEPOT = 1 << 12;
/** CPUs drive GPs themselves (src/cpu/deferred.ts). */
const P_CPU_GP = 1 << 11;
/** Largest multiple of the kernel's watermarks an adaptive cache holds. */
export const ADAPTIVE_MAX_SCALE = 8;
const P_TRIM_TTRACE = 1 << 4;
/** Refills and trims run as irq_work (policy refillWork 'irq-work'; src/cpu/cpu.ts). */
const P_IRQ_WORK = 1 << 15;
/** Refill from the ttrace lists: 0 none, 1 unsealed list only, 2 both (two bits). */
const P_REFILL_SHIFT = 5;
export const P_REFILL_ALL = 2;
/** After the rcu GP: 0 ttrace lists, 1 free list, 2 slab (two bits). */
const P_AFTER_RCU_SHIFT = 7;
/** Cache 'sheaves', remote frees around the sheaves, and the sheaf capacity (six bits). */
const P_SHEAVES = 1 << 13;
const P_SHEAF_REMOTE_SLAB = 1 << 14;
const P_SHEAF_CAPACITY_SHIFT = 16;
/** sheafReady 'cpu' (above the six capacity bits). */
const P_SHEAF_READY_CPU = 1 << 22;
/** sheafLocks 'try'. */
const P_SHEAF_TRY_LOCKS = 1 << 23;

export function encodePolicy(p: Policy): number {
  return (
    choices.reuse.indexOf(p.reuse) |
    (p.remoteFree === 'hint' ? P_HINT : p.remoteFree === 'owner' ? P_OWNER : 0) |
    (p.capacity === 'unbounded' ? P_UNBOUNDED : p.capacity === 'adaptive' ? P_ADAPTIVE : 0) |
    (p.gpDrive === 'cpus' ? P_CPU_GP : 0) |
    (p.sharing === 'depot' ? P_DEPOT : 0) |
    (p.trimVia === 'ttrace' ? P_TRIM_TTRACE : 0) |
    (p.refillWork === 'irq-work' ? P_IRQ_WORK : 0) |
    (choices.refillFromTtrace.indexOf(p.refillFromTtrace) << P_REFILL_SHIFT) |
    (choices.afterRcuGp.indexOf(p.afterRcuGp) << P_AFTER_RCU_SHIFT) |
    (p.cache === 'sheaves' ? P_SHEAVES : 0) |
    (p.sheafRemoteFree === 'slab' ? P_SHEAF_REMOTE_SLAB : 0) |
    (p.sheafCapacity << P_SHEAF_CAPACITY_SHIFT) |
    (p.sheafReady === 'cpu' ? P_SHEAF_READY_CPU : 0) |
    (p.sheafLocks === 'try' ? P_SHEAF_TRY_LOCKS : 0)
  );
}

export function decodePolicy(bits: number): Policy {
  return {
    reuse: choices.reuse[bits & P_REUSE_MASK] as ReuseChoice,
    remoteFree: bits & P_HINT ? 'hint' : bits & P_OWNER ? 'owner' : 'local',
    sharing: bits & P_DEPOT ? 'depot' : 'none',
    capacity: bits & P_UNBOUNDED ? 'unbounded' : bits & P_ADAPTIVE ? 'adaptive' : 'fixed',
    gpDrive: bits & P_CPU_GP ? 'cpus' : 'coordinator',
    trimVia: bits & P_TRIM_TTRACE ? 'ttrace' : 'slab',
    refillFromTtrace: choices.refillFromTtrace[(bits >> P_REFILL_SHIFT) & 3] as Policy['refillFromTtrace'],
    afterRcuGp: choices.afterRcuGp[(bits >> P_AFTER_RCU_SHIFT) & 3] as Policy['afterRcuGp'],
    refillWork: bits & P_IRQ_WORK ? 'irq-work' : 'inline',
    cache: bits & P_SHEAVES ? 'sheaves' : 'lists',
    sheafCapacity: (bits >> P_SHEAF_CAPACITY_SHIFT) & 63,
    sheafRemoteFree: bits & P_SHEAF_REMOTE_SLAB ? 'slab' : 'sheaf',
    sheafReady: bits & P_SHEAF_READY_CPU ? 'cpu' : 'barn',
    sheafLocks: bits & P_SHEAF_TRY_LOCKS ? 'try' : 'wait',
  };
}

/**
 * The policy word (H_POLICY) decoded once, into the names every layer reads: the CPU handle, the
 * deferred lists and the coordinator each copy the fields they test into fields of their own at
 * construction (a boolean field is as cheap to test on a slow path as a masked bit).
 */
export interface PolicyWord {
  /** Frees wait for a grace period before reuse (reuse is not 'immediate'). */
  readonly deferring: boolean;
  /** remoteFree 'hint': a trim sends the overflow to the owner hint's CPU (c->tgt). */
  readonly hint: boolean;
  /** remoteFree 'owner': frees of another CPU's units go back to it. */
  readonly ownerReturn: boolean;
  /** capacity 'unbounded': caches are never trimmed. */
  readonly unbounded: boolean;
  /** capacity 'adaptive': watermarks scale per CPU and class. */
  readonly adaptive: boolean;
  /** sharing 'depot': trims park whole batches in the depot. */
  readonly depot: boolean;
  /** gpDrive 'cpus': CPUs advance the epochs themselves. */
  readonly cpusDriveGp: boolean;
  /** trimVia 'ttrace': a trim goes to the ttrace lists first. */
  readonly trimViaTtrace: boolean;
  /** Refill from the ttrace lists: 0 none, 1 the unsealed list only, P_REFILL_ALL both. */
  readonly refillFromTtrace: number;
  /** After the rcu GP: 0 the ttrace lists, 1 the free list, 2 the slab. */
  readonly afterRcuGp: number;
  /** refillWork 'irq-work': a watermark crossing raises the refill or trim instead of running it. */
  readonly irqWork: boolean;
  /** cache 'sheaves'. */
  readonly sheaves: boolean;
  /** sheafRemoteFree 'slab'. */
  readonly sheafRemoteToSlab: boolean;
  /** The explicit sheaf capacity, 0 for the kernel's formula. */
  readonly sheafCapacity: number;
  /** sheafReady 'cpu': sealed rcu_free sheaves past their GP stay on their CPU. */
  readonly sheafReadyOnCpu: boolean;
  /** sheafLocks 'try': the slow paths only try the barn and slab locks (the nolock preset). */
  readonly sheafTryLocks: boolean;
}

/** Decodes an arena's policy word (header word H_POLICY). */
export function readPolicyWord(bits: number): PolicyWord {
  return {
    deferring: (bits & P_REUSE_MASK) !== P_REUSE_IMMEDIATE,
    hint: (bits & P_HINT) !== 0,
    ownerReturn: (bits & P_OWNER) !== 0,
    unbounded: (bits & P_UNBOUNDED) !== 0,
    adaptive: (bits & P_ADAPTIVE) !== 0,
    depot: (bits & P_DEPOT) !== 0,
    cpusDriveGp: (bits & P_CPU_GP) !== 0,
    trimViaTtrace: (bits & P_TRIM_TTRACE) !== 0,
    refillFromTtrace: (bits >> P_REFILL_SHIFT) & 3,
    afterRcuGp: (bits >> P_AFTER_RCU_SHIFT) & 3,
    irqWork: (bits & P_IRQ_WORK) !== 0,
    sheaves: (bits & P_SHEAVES) !== 0,
    sheafRemoteToSlab: (bits & P_SHEAF_REMOTE_SLAB) !== 0,
    sheafCapacity: (bits >> P_SHEAF_CAPACITY_SHIFT) & 63,
    sheafReadyOnCpu: (bits & P_SHEAF_READY_CPU) !== 0,
    sheafTryLocks: (bits & P_SHEAF_TRY_LOCKS) !== 0,
  };
}
