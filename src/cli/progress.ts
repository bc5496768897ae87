/**
 * The report's progress on stderr. On a terminal: a bar (cli-progress, an optional peer
 * dependency) with the run in progress and an ETA that appears only once a run has finished (an
 * estimate from the first fraction of a second was hours off). Elsewhere (CI logs, a pipe, a
 * file): one line per finished case, so a long report is never silent.
 *
 * Who may call: the CLI (main thread).
 */
import { loadOptional } from './optional-deps.js';

export interface ReportProgress {
  /** `done` runs of `total` finished, plus a fraction of the current one, labelled `label`. */
  update(done: number, label: string): void;
  /** A run finished: its one-line summary (printed when stderr is not a terminal). */
  finished(index: number, summary: string): void;
  stop(): void;
}

const formatSeconds = (s: number): string =>
  s >= 60 ? `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.round(s)}s`;

/** Seconds left, from the runs finished so far; undefined before the first one finished. */
export function etaSeconds(elapsedS: number, done: number, total: number): number | undefined {
  const finished = Math.floor(done);
  if (finished < 1) return undefined;
  return (elapsedS / done) * (total - done);
}

export async function reportProgress(
  total: number,
  stream: NodeJS.WriteStream = process.stderr,
): Promise<ReportProgress> {
  const started = performance.now();
  const elapsed = (): number => (performance.now() - started) / 1000;
  if (!stream.isTTY) {
    return {
      update() {},
      finished(index, summary) {
        stream.write(`[${index + 1}/${total}] ${summary} (${formatSeconds(elapsed())} so far)\n`);
      },
      stop() {},
    };
  }
  const { SingleBar } = await loadOptional(
    'cli-progress',
    "percpu-arena report's progress bar",
    () => import('cli-progress'),
  );
  const bar = new SingleBar({
    format: ' {bar} {percentage}% | run {run}/{runs} {label} | {eta}',
    stream,
    hideCursor: true,
  });
  const payload = (done: number, label: string) => {
    const eta = etaSeconds(elapsed(), done, total);
    return {
      run: Math.min(total, Math.floor(done) + 1),
      runs: total,
      label,
      eta: eta === undefined ? 'ETA after the first run' : `ETA ${formatSeconds(eta)}`,
    };
  };
  bar.start(total, 0, payload(0, ''));
  return {
    update(done, label) {
      bar.update(done, payload(done, label));
    },
    finished() {},
    stop() {
      bar.stop();
    },
  };
}
