/**
 * The table crash recovery consults for each region on the structure chain
 * (src/shm/structure-chain.ts): one entry per kind of structure, keyed by its magic. A new kind
 * of structure that takes robust mutexes joins the chain in its `create` and adds its entry here.
 *
 * Who may call: src/arena/recovery.ts. Immutable after load.
 */
import { recovererTable } from '../shm/structure-chain.js';
import { mapRecoverer } from './hash-map.js';
import { packRecoverer } from './pack.js';
import { trieRecoverer } from './qp-trie.js';
import { retiredTableRecoverer, tableRecoverer } from './shared-table.js';

export const STRUCTURE_RECOVERERS = recovererTable([
  packRecoverer,
  trieRecoverer,
  mapRecoverer,
  tableRecoverer,
  retiredTableRecoverer,
]);
