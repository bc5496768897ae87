/** Piscina task entry of the CPU pool: one CPU run per task (see src/service/pool.ts). */
import { runCpuTask } from '../src/service/cpu-context.js';

export default runCpuTask;
