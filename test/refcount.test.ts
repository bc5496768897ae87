/**
 * Ref-counted objects (src/structures/refcount.ts), deterministic: create starts at one reference, acquire
 * takes one only from a non-zero count (kptr_get), the last release frees the unit through the
 * allocator; and the trap the lab measures: under immediate reuse a stale pointer acquires the
 * object re-created in the freed unit.
 */
import { describe, expect, it } from 'vitest';
import { Arena } from '../src/index.js';
import { RefCounts, UnitRefs } from '../src/structures/index.js';

describe('ref-counted objects', () => {
  it('count, acquire only from non-zero, free at zero', async () => {
    const arena = Arena.create({ cpus: 1, coordinator: 'manual', policy: 'kernel-6.6' });
    const cpu = arena.attach(0);
    const objects = new RefCounts(cpu);
    const obj = objects.create(32);
    expect(objects.count(obj)).toBe(1);
    expect(objects.acquire(obj)).toBe(true);
    expect(objects.count(obj)).toBe(2);
    objects.release(obj);
    const live = arena.stats().liveUnits;
    objects.release(obj);
    expect(arena.stats().liveUnits).toBe(live - 1);
    // Freed: its count is 0 and kptr_get refuses it...
    expect(objects.acquire(obj)).toBe(false);
    // ...until the unit is handed out again as a new object: then the stale pointer succeeds.
    const refs = new UnitRefs(arena.shared);
    const again = objects.create(32);
    expect(again).toBe(obj);
    expect(objects.acquire(obj)).toBe(true);
    expect(refs.isCurrent(refs.of(again))).toBe(true);
    objects.release(again);
    objects.release(again);
    await arena.close();
  });
});
