import type { AnyCacheMap } from './cache';
import type { GraphModel, GraphNode } from './graph-render';
import { assertCacheName } from './store/file-name';

/**
 * The edges between a manager's caches, by name: parent → dependents (cascades follow them),
 * and cache → inputs (memoize's dependsOn: shown by the graph and the manifest, never followed).
 * Names need not be registered: an edge may be declared before either cache exists.
 */
export class CacheGraph {
  readonly #dependents = new Map<string, Set<string>>();
  readonly #inputs = new Map<string, Set<string>>();

  /** Adds `parent → dependent`; true when the edge is new. @throws {InvalidCacheNameError} */
  addDependency(parent: string, dependent: string): boolean {
    assertCacheName(parent);
    assertCacheName(dependent);
    let set = this.#dependents.get(parent);
    if (!set) this.#dependents.set(parent, (set = new Set()));
    if (set.has(dependent)) return false;
    set.add(dependent);
    return true;
  }

  /** Records that `cache` holds results computed over `inputs`; true when one of them is new. */
  recordInputs(cache: string, inputs: readonly string[]): boolean {
    let set = this.#inputs.get(cache);
    if (!set) this.#inputs.set(cache, (set = new Set()));
    const before = set.size;
    for (const input of inputs) set.add(input);
    return set.size !== before;
  }

  dependentsOf(name: string): ReadonlySet<string> {
    return this.#dependents.get(name) ?? new Set();
  }

  /** Whether `name` was ever declared a parent (it may have dependents here while not registered). */
  isParent(name: string): boolean {
    return this.#dependents.has(name);
  }

  /** What `cache` was computed over, when that was recorded. */
  inputsOf(cache: string): string[] | undefined {
    const set = this.#inputs.get(cache);
    return set === undefined ? undefined : [...set];
  }

  /** Every parent → dependents edge, as the manifest and the graph renderer take them. */
  dependentsRecord(): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const [parent, set] of this.#dependents) out[parent] = [...set];
    return out;
  }

  /** Every cache → inputs record. */
  inputsRecord(): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const [cache, set] of this.#inputs) out[cache] = [...set];
    return out;
  }

  /**
   * `root` and its transitive dependents, each once, parents before their dependents (a circle
   * is broken where it closes): iterative DFS, reversed post-order.
   */
  order(root: string): string[] {
    const visited = new Set<string>([root]);
    const post: string[] = [];
    const stack: Array<[string, Iterator<string>]> = [[root, this.dependentsOf(root).values()]];
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as [string, Iterator<string>];
      const next = top[1].next();
      if (next.done) {
        post.push(top[0]);
        stack.pop();
      } else if (!visited.has(next.value)) {
        visited.add(next.value);
        stack.push([next.value, this.dependentsOf(next.value).values()]);
      }
    }
    return post.reverse();
  }

  /**
   * The model `renderGraph` draws of live caches: every registered cache with its class, entries
   * and last save here, the edges, and the caches memoized results were computed over.
   */
  model(manager: string, caches: ReadonlyMap<string, AnyCacheMap>): GraphModel {
    const nodes: GraphNode[] = [];
    for (const [name, cache] of caches) {
      const stats = cache.stats;
      nodes.push({
        name,
        kind: cache.constructor.name,
        entries: stats.hasContents ? stats.entries : undefined,
        savedAt: stats.lastSaveAt === undefined ? undefined : new Date(stats.lastSaveAt).toISOString(),
        inputs: this.inputsOf(name),
      });
    }
    return { manager, nodes, dependents: this.dependentsRecord() };
  }
}
