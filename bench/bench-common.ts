/**
 * What every benchmark in bench/ reports alongside its numbers: the machine, Node, the commit
 * measured, the load of other processes during the run, and medians with their spread.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Summary {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

export function summarize(xs: readonly number[]): Summary {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
  return { median, min: s[0] as number, max: s[s.length - 1] as number };
}

/** The q-quantile (0..1) of `xs` by nearest rank. */
export function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] as number;
}

export function envNumber(name: string, fallback: number, valid: (v: number) => boolean): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!valid(v)) throw new Error(`${name}=${raw} is not valid`);
  return v;
}

/**
 * CPU seconds the calling process's main thread has used so far (Linux /proc/self/task/<pid>/stat,
 * utime + stime at USER_HZ = 100), or NaN elsewhere. In the lab benchmarks the main thread runs
 * the GP coordinator and the driver, the workers run the producers: what it uses, a 2-core
 * machine takes from them.
 */
export function mainThreadCpuSeconds(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start at ") ": state is field 3.
    const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/**
 * CPU seconds all processes of the machine have spent busy so far (Linux /proc/stat, USER_HZ =
 * 100), or undefined elsewhere. Minus this process's own CPU time it gives the other load.
 */
function machineBusySeconds(): number | undefined {
  try {
    const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '')
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    // user nice system idle iowait irq softirq steal
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
    return (user + nice + system + irq + softirq + steal) / 100;
  } catch {
    return undefined;
  }
}

/** Snapshot for {@link otherLoad}. */
export const loadMark = () => ({
  wall: performance.now(),
  busy: machineBusySeconds(),
  own: process.cpuUsage(),
});

/** CPUs' worth of work done by other processes since `mark` (undefined if unknown). */
function otherLoad(mark: ReturnType<typeof loadMark>): number | undefined {
  const busy = machineBusySeconds();
  if (busy === undefined || mark.busy === undefined) return undefined;
  const own = process.cpuUsage(mark.own);
  const wall = (performance.now() - mark.wall) / 1000;
  return Math.max(0, (busy - mark.busy - (own.user + own.system) / 1e6) / wall);
}

/** The commit measured, and whether src/ had uncommitted changes (the numbers depend on both). */
function sourceVersion(): string {
  try {
    const git = (...args: string[]): string =>
      execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = git('status', '--porcelain', '--', 'src', 'workers') !== '';
    return `${git('rev-parse', '--short', 'HEAD')}${dirty ? ' + uncommitted changes in src/' : ''}`;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

/** The conditions of a run, printed at the top of every report. */
export function runConditions<E extends Record<string, unknown>>(extra: E) {
  return {
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    node: process.version,
    v8: process.versions.v8,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
    date: new Date().toISOString(),
    source: sourceVersion(),
    command: [
      'node',
      ...process.execArgv,
      path.relative(process.cwd(), process.argv[1] ?? ''),
      ...process.argv.slice(2),
    ]
      .join(' ')
      .trim(),
    ...extra,
  };
}

/** Prints the conditions as the report's header. */
export function printConditions(
  title: string,
  c: ReturnType<typeof runConditions<Record<string, unknown>>>,
): void {
  console.log(title);
  console.log(`CPU:     ${c.cpuModel}, ${c.cores} cores (${c.platform})`);
  console.log(`Node:    ${c.node} (V8 ${c.v8})`);
  console.log(`Date:    ${c.date}   load average ${c.loadavg.join(' ')}`);
  console.log(`Command: ${c.command}`);
  console.log(`Source:  ${c.source}`);
}

/** Ends a round: records the other processes' load since `mark` and prints progress to stderr. */
export function endRound(
  round: number,
  rounds: number,
  mark: ReturnType<typeof loadMark>,
  otherLoads: number[],
): void {
  const other = otherLoad(mark);
  if (other !== undefined) otherLoads.push(other);
  process.stderr.write(
    `round ${round}/${rounds} done in ${((performance.now() - mark.wall) / 1000).toFixed(1)} s` +
      (other === undefined ? '\n' : `, other processes used ${other.toFixed(2)} CPUs\n`),
  );
}
