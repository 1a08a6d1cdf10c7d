import * as fs from 'node:fs';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import { CacheManager, PersistentCache } from '../lib';
import type { Row } from './workload';

/** One way of saving and loading a map of n entries, as its users would call it. */
export interface Contender {
  readonly name: string;
  /** What it does on save, so ratios are read in context. */
  readonly note: string;
  /** Prepares a store in `dir` holding `map`'s entries in memory (not timed). */
  setup(dir: string, map: Map<string, Row>): Promise<void>;
  /** Writes everything it holds to disk. */
  save(): Promise<void>;
  /** Reads everything back into memory; returns how many entries it got. */
  load(): Promise<number>;
  /** Bytes on disk after a save. */
  bytes(): number;
  close(): Promise<void>;
}

export function depcache(): Contender {
  let manager: CacheManager;
  let cache: PersistentCache<string, Row>;
  return {
    name: 'depcache',
    note: 'CRC frames, fsync, rename (every save a whole file: the journal is off here)',
    async setup(dir, map) {
      // The journal would make the repeated saves of an unchanged cache write nothing; this row
      // measures a whole save, as the first save of a cache (or one after clear()) is.
      manager = new CacheManager('bench', { baseDirectory: dir, fileStore: { journal: false } });
      cache = new PersistentCache<string, Row>('rows', { manager, contents: map });
    },
    async save() {
      await cache.save();
    },
    async load() {
      await cache.load();
      return cache.size;
    },
    bytes: () => fs.statSync(cache.path).size,
    close: () => manager.close(),
  };
}

export function rawFloor(): Contender {
  let map: Map<string, Row>;
  let file: string;
  return {
    name: 'raw floor',
    note: 'v8.serialize, write, fsync, rename',
    async setup(dir, m) {
      map = m;
      file = path.join(dir, 'floor.v8');
    },
    async save() {
      const buf = v8.serialize(map);
      const tmp = `${file}.tmp`;
      const fh = await fs.promises.open(tmp, 'w');
      await fh.writeFile(buf);
      await fh.sync();
      await fh.close();
      await fs.promises.rename(tmp, file);
    },
    async load() {
      map = v8.deserialize(await fs.promises.readFile(file)) as Map<string, Row>;
      return map.size;
    },
    bytes: () => fs.statSync(file).size,
    close: async () => undefined,
  };
}

export function flatCache(): Contender {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { FlatCache } = require('flat-cache') as typeof import('flat-cache');
  let cache: InstanceType<typeof FlatCache>;
  let dir: string;
  return {
    name: 'flat-cache',
    note: 'flatted JSON, writeFileSync',
    async setup(d, map) {
      dir = d;
      cache = new FlatCache({ cacheDir: dir, cacheId: 'rows' });
      for (const [k, v] of map) cache.setKey(k, v);
    },
    async save() {
      cache.save(true);
    },
    async load() {
      const fresh = new FlatCache({ cacheDir: dir, cacheId: 'rows' });
      fresh.load('rows', dir);
      return Object.keys(fresh.all()).length;
    },
    bytes: () => fs.statSync(path.join(dir, 'rows')).size,
    close: async () => undefined,
  };
}

// node-persist reads maxFileDescriptors; its type definitions lag behind.
type NodePersistOptions = Parameters<typeof import('node-persist').create>[0];

export function nodePersist(): Contender {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const storage = require('node-persist') as typeof import('node-persist');
  let store: ReturnType<typeof storage.create>;
  let map: Map<string, Row>;
  let dir: string;
  return {
    name: 'node-persist',
    note: 'one JSON file per key',
    async setup(d, m) {
      dir = path.join(d, 'persist');
      map = m;
      // Bounded descriptors (its load opens every file at once), and no expiry timer: it outlives
      // the store and crashes on the removed directory two minutes later.
      store = storage.create({ dir, maxFileDescriptors: 256, expiredInterval: 0 } as NodePersistOptions);
      await store.init();
    },
    async save() {
      // Its only way to persist a map is one setItem per entry; a few at a time, as users do.
      const entries = [...map];
      for (let i = 0; i < entries.length; i += 256) {
        await Promise.all(entries.slice(i, i + 256).map(([k, v]) => store.setItem(k, v)));
      }
    },
    async load() {
      const fresh = storage.create({ dir, maxFileDescriptors: 256, expiredInterval: 0 } as NodePersistOptions);
      await fresh.init();
      return (await fresh.values()).length;
    },
    bytes: () => fs.readdirSync(dir).reduce((sum, f) => sum + fs.statSync(path.join(dir, f)).size, 0),
    close: async () => undefined,
  };
}

export function keyvFile(): Contender {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { Keyv } = require('keyv') as typeof import('keyv');
  const { KeyvFile } = require('keyv-file') as typeof import('keyv-file');
  /* eslint-enable @typescript-eslint/no-require-imports */
  let store: InstanceType<typeof KeyvFile>;
  let file: string;
  return {
    name: 'keyv + keyv-file',
    note: 'JSON, writeFile (no fsync)',
    async setup(dir, map) {
      file = path.join(dir, 'keyv.json');
      store = new KeyvFile({ filename: file, writeDelay: 1e9 });
      const keyv = new Keyv({ store });
      // Filling through keyv's API, unawaited: awaiting each set waits for keyv-file's write delay.
      for (const [k, v] of map) void keyv.set(k, v);
      await new Promise((r) => setImmediate(r));
    },
    async save() {
      // keyv-file's own flush (it normally runs on a debounce timer after a set).
      await (store as unknown as { saveToDisk(): Promise<void> }).saveToDisk();
    },
    async load() {
      const fresh = new KeyvFile({ filename: file, writeDelay: 1e9 });
      return [...(await fresh.keys())].length;
    },
    bytes: () => fs.statSync(file).size,
    close: async () => undefined,
  };
}
