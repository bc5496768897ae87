/**
 * Branded numbers: a pointer (a byte offset into the arena, 0 for null) and each structure's ref
 * (the byte offset of its region) are all plain numbers at run time, and distinct types at
 * compile time, so that a map's ref cannot be passed where a trie's is wanted, nor a ref freed as
 * a pointer. `X.create` returns the ref type its `X.open` takes.
 *
 * Who may call: anyone; types only.
 */
declare const kBrand: unique symbol;

/** A number branded `B`: assignable to number, not from it (cast where a number is known to be one). */
export type Branded<B extends string> = number & { readonly [kBrand]: B };

/** A unit's user pointer, as `cpu.alloc` returns it. */
export type Pointer = Branded<'Pointer'>;
/** A hash map's ref (`HashMap.create`). */
export type HashMapRef = Branded<'HashMapRef'>;
/** A qp-trie's ref (`QpTrie.create`). */
export type QpTrieRef = Branded<'QpTrieRef'>;
/** A pack allocator's ref (`PackAllocator.create`). */
export type PackRef = Branded<'PackRef'>;
/** A shared map's ref (`SharedMap.create`). */
export type SharedMapRef = Branded<'SharedMapRef'>;
