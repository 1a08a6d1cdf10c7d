// A store of your own: each cache is one file of lines, a whole save rewrites it atomically and a
// change-only save appends one line (fsynced; a line cut short by a crash is skipped whole). It implements depcache's CacheStore interface and nothing
// else, and the cache gets every guarantee from the core (sliced saves, the exit flush through
// saveSync, onCorrupt, saveOnBlank, expiry, generations, following other writers).
// Run: npx ts-node examples/custom-store.ts (twice: the second run finds what the first saved)
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import {
  CacheManager,
  CorruptCacheFileError,
  PersistentCache,
  type CacheStore,
  type StoreBatch,
  type StoreCapabilities,
  type StoreSave,
  type StoreSyncSave,
  type StoredContents,
  type StoredEntry,
} from '../lib';

/** One line: a whole save's header, or one batch of changes. v8-serialized, so types survive. */
type Line = { kind: 'whole'; generation: string } | { kind: 'batch'; generation: string; sets: StoredEntry[]; deletes: unknown[] };

export class LineStore implements CacheStore {
  readonly capabilities: StoreCapabilities = { expiry: true, generations: true, changes: true };

  constructor(readonly directory: string) {
    fs.mkdirSync(directory, { recursive: true });
  }

  fileOf(name: string): string {
    return path.join(this.directory, `${encodeURIComponent(name)}.lines`);
  }

  async load(name: string): Promise<StoredContents | undefined> {
    let text: string;
    try {
      text = await fs.promises.readFile(this.fileOf(name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const entries = new Map<unknown, StoredEntry>();
    let generation: string | undefined;
    const lines = text.split('\n');
    // Every line ends with '\n': a last line without one was cut short by a crash and is skipped.
    for (const encoded of lines.slice(0, -1)) {
      let line: Line;
      try {
        line = v8.deserialize(Buffer.from(encoded, 'base64')) as Line;
      } catch (err) {
        throw new CorruptCacheFileError(name, this.fileOf(name), 'a line cannot be read', { cause: err });
      }
      generation = line.generation;
      if (line.kind === 'whole') entries.clear();
      else {
        for (const entry of line.sets) entries.set(entry.key, entry);
        for (const key of line.deletes) entries.delete(key);
      }
    }
    return { entries: entries.values(), generation };
  }

  async save(name: string, save: StoreSave): Promise<void> {
    const batches: StoreBatch[] = [];
    for await (const batch of save.batches()) batches.push(batch);
    const text = linesOf(save.mode, save.generation, batches);
    if (save.mode === 'whole') await writeAtomically(this.fileOf(name), text);
    else {
      trimTornTail(this.fileOf(name));
      const handle = await fs.promises.open(this.fileOf(name), 'a');
      try {
        await handle.appendFile(text);
        await handle.sync(); // durable before save() resolves
      } finally {
        await handle.close();
      }
    }
  }

  saveSync(name: string, save: StoreSyncSave): void {
    const text = linesOf(save.mode, save.generation, [...save.batches()]);
    const file = this.fileOf(name);
    if (save.mode !== 'whole') trimTornTail(file);
    const target = save.mode === 'whole' ? `${file}.${process.pid}.tmp` : file;
    const fd = fs.openSync(target, save.mode === 'whole' ? 'w' : 'a');
    try {
      fs.writeSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    if (save.mode === 'whole') fs.renameSync(target, file);
  }

  async remove(name: string): Promise<void> {
    await fs.promises.rm(this.fileOf(name), { force: true });
  }

  async quarantine(name: string): Promise<string> {
    const aside = `${this.fileOf(name)}.corrupt-${Date.now()}`;
    await fs.promises.rename(this.fileOf(name), aside);
    return aside;
  }

  follow(name: string, changed: () => void): () => void {
    const file = path.basename(this.fileOf(name));
    const watcher = fs.watch(this.directory, { persistent: false }, (_event, changedFile) => {
      if (changedFile === file) changed();
    });
    return () => watcher.close();
  }
}

/** Cuts a last line a crash left unfinished, so the next append starts a line of its own. */
function trimTornTail(file: string): void {
  let text: Buffer;
  try {
    text = fs.readFileSync(file);
  } catch {
    return; // nothing saved yet: the append creates the file
  }
  if (text.length > 0 && text[text.length - 1] !== 0x0a) fs.truncateSync(file, text.lastIndexOf(0x0a) + 1);
}

/** A whole save: its header line, then its entries; a change save: one line, applied whole or not at all. */
function linesOf(mode: 'whole' | 'changes', generation: string, batches: readonly StoreBatch[]): string {
  const sets = batches.flatMap((b) => b.sets);
  const deletes = batches.flatMap((b) => [...b.deletes]);
  const body = encode({ kind: 'batch', generation, sets, deletes });
  return mode === 'whole' ? encode({ kind: 'whole', generation }) + body : body;
}

function encode(line: Line): string {
  return `${v8.serialize(line).toString('base64')}\n`;
}

async function writeAtomically(file: string, text: string): Promise<void> {
  const temp = `${file}.${process.pid}.tmp`;
  const handle = await fs.promises.open(temp, 'w');
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.promises.rename(temp, file);
}

async function main(): Promise<void> {
  const base = path.join(os.tmpdir(), 'depcache-examples');
  const manager = new CacheManager('custom-store', { baseDirectory: base });
  const store = new LineStore(path.join(base, 'lines'));
  const visits = await PersistentCache.open<string, number>('visits', { manager, store });
  console.log(`visits so far: ${visits.get('home') ?? 0}`);
  visits.set('home', (visits.get('home') ?? 0) + 1);
  visits.set('session', Date.now(), { ttlMs: 60_000 }); // the store keeps expiry times
  await visits.save(); // a change-only save: one line appended
  await manager.close();
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
