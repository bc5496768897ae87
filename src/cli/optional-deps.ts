/**
 * The CLI's optional peer dependencies, loaded on first use: `echarts` (the report's charts),
 * `cli-table3` (tables) and `cli-progress` (the report's progress bar). A library user installs
 * none of them (echarts alone is 62 MB); a clone of the repository has them as devDependencies.
 * When one is missing, the command that needs it stops with one line naming the package to
 * install (a `UsageError`, so the CLI prints it and exits with 2) instead of a stack trace.
 *
 * Who may call: the CLI (main thread).
 */
import { UsageError } from './options.js';

/** Thrown when an optional peer dependency a command needs is not installed. */
export class MissingPackageError extends UsageError {
  constructor(
    readonly packageName: string,
    purpose: string,
  ) {
    super(`${purpose} needs the optional package ${packageName}: npm install ${packageName}`);
  }
}

/** Whether `error` says that `name` itself (not something it imports) could not be found. */
function isMissing(error: unknown, name: string): boolean {
  const code = (error as { code?: string }).code;
  if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') return false;
  const message = String((error as Error).message);
  return message.includes(`'${name}'`) || message.includes(`"${name}"`);
}

/**
 * `load()` (a literal `() => import('name')`, so the module keeps its types), or a
 * MissingPackageError naming `name` when it is not installed.
 */
export async function loadOptional<T>(name: string, purpose: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (error) {
    if (isMissing(error, name)) throw new MissingPackageError(name, purpose);
    throw error;
  }
}

/** cli-table3's Table class. */
export type TableClass = typeof import('cli-table3');

/** cli-table3's Table class, or a MissingPackageError for `purpose` ("percpu-arena demo's tables"). */
export async function loadTable(purpose: string): Promise<TableClass> {
  return (await loadOptional('cli-table3', purpose, () => import('cli-table3'))).default;
}
