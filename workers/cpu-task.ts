/** Piscina task entry of the CPU pool: one CPU run per task (see src/pool.ts). */
import { runCpuTask } from '../src/service/cpu-context.js';

export default runCpuTask;
