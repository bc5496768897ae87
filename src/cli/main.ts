#!/usr/bin/env node
/**
 * The percpu-arena command line: `report` (the main job), `bench htab-mem|xmalloc|pack`, `demo`,
 * `torture`, `--version`; src/cli/commands.ts does the work.
 *
 * Who may call: a shell. One command per process.
 */
import { main } from './commands.js';

process.exitCode = await main(process.argv.slice(2));
