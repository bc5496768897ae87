/**
 * How long a freed unit waits before it may be reused, for the benchmarks' JSON (issue 17
 * item 6): the rate of frees from the allocator's own counters, and the mean wait by Little's
 * law. Sampled every `periodMs` over the measured seconds (after the warm-up), the units waiting
 * for a grace period (`stats().classes[c].deferred`: the deferred lists, and the rcu_free and
 * sealed sheaves) average L; frees arrive at λ per second; in a steady state a unit waits
 * W = L / λ on average, whatever the mechanism (one unit at a time on lists, a sheaf at a time
 * under sheaves, nothing under immediate reuse). The memory a grace period holds is then
 * frees/s × wait × unit size, which is L's bytes: reported as `heldMiB`, per class size.
 *
 * Who may call: the thread that created the arena (it reads `stats()`, which takes no lock).
 */
import type { Arena } from '../../arena/arena.js';
import type { ArenaStats } from '../../arena/stats.js';
import { MiB, round2 } from './measure.js';

export interface GraceWait {
  /** Units freed per second over the measured seconds (free and freeRcu, every CPU). */
  readonly freesPerS: number;
  /** Mean time a freed unit waited before it could be reused, ms (Little's law: waiting / freesPerS). */
  readonly meanWaitMs: number;
  /** Mean number of units waiting for a grace period. */
  readonly meanWaitingUnits: number;
  /** Mean bytes of those units, MiB (= freesPerS × wait × unit size, summed over classes). */
  readonly heldMiB: number;
  /** Samples the figures come from (every periodMs of the measured seconds). */
  readonly samples: number;
}

export interface GraceWaitMeter {
  /** The window's start (first call) and its end so far (every later call): samples now. */
  mark(): void;
  /** Stops sampling and returns the figures up to the last mark. */
  stop(): GraceWait;
}

const waitingBytes = (stats: ArenaStats): number =>
  stats.classes.reduce((bytes, c) => bytes + c.deferred * c.unitSize, 0);

/**
 * The arithmetic of the meter, without timers: `add` a sample (ms, cumulative frees, units and
 * bytes waiting), `result` the figures over the samples so far.
 */
export class GraceWaitAccumulator {
  #first: { at: number; frees: number } | undefined;
  #last: { at: number; frees: number; units: number; bytes: number } | undefined;
  #unitSeconds = 0;
  #byteSeconds = 0;
  #samples = 0;

  add(at: number, frees: number, units: number, bytes: number): void {
    if (this.#first === undefined) this.#first = { at, frees };
    const last = this.#last;
    // Trapezoids between samples: the time integral of the waiting units and bytes.
    if (last !== undefined) {
      const dt = (at - last.at) / 1000;
      this.#unitSeconds += ((units + last.units) / 2) * dt;
      this.#byteSeconds += ((bytes + last.bytes) / 2) * dt;
    }
    this.#last = { at, frees, units, bytes };
    this.#samples++;
  }

  result(): GraceWait {
    const first = this.#first;
    const last = this.#last;
    const seconds = first === undefined || last === undefined ? 0 : (last.at - first.at) / 1000;
    if (first === undefined || last === undefined || seconds <= 0) {
      return { freesPerS: 0, meanWaitMs: 0, meanWaitingUnits: 0, heldMiB: 0, samples: this.#samples };
    }
    const freesPerS = (last.frees - first.frees) / seconds;
    const meanWaitingUnits = this.#unitSeconds / seconds;
    return {
      freesPerS: Math.round(freesPerS),
      meanWaitMs: freesPerS === 0 ? 0 : round2((meanWaitingUnits / freesPerS) * 1000),
      meanWaitingUnits: Math.round(meanWaitingUnits),
      heldMiB: round2(this.#byteSeconds / seconds / MiB),
      samples: this.#samples,
    };
  }
}

/**
 * Samples `arena` every `periodMs` between the run's marks: call `mark()` where the run reads
 * its measured counters (`onMeasure` of src/lab/benchmarks/measure.ts: the end of the warm-up
 * and of every interval), so the window is the measured one however long the workers took to
 * start.
 */
export function startGraceWaitMeter(arena: Arena, periodMs = 50): GraceWaitMeter {
  const acc = new GraceWaitAccumulator();
  let marked = false;
  let atLastMark = acc.result();
  const sample = (): void => {
    // A run that threw closes its arena without stopping the meter: stop here.
    if (arena.closed) {
      clearInterval(timer);
      return;
    }
    const stats = arena.stats();
    acc.add(performance.now(), stats.totals.frees, stats.totals.deferred, waitingBytes(stats));
  };
  const timer = setInterval(() => {
    if (marked) sample();
  }, periodMs);
  timer.unref();
  return {
    mark(): void {
      if (arena.closed) return;
      marked = true;
      sample();
      atLastMark = acc.result();
    },
    stop(): GraceWait {
      clearInterval(timer);
      return atLastMark;
    },
  };
}
