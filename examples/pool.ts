// A pool of (fake) database connections: use() for one-off work, scoped() for a request that
// makes several calls on one connection.
//   npx ts-node examples/pool.ts
import { Pool } from '../lib';

class FakeConnection {
  static opened = 0;
  readonly id = ++FakeConnection.opened;
  closed = false;
  async query(sql: string): Promise<string> {
    await new Promise((r) => setTimeout(r, 5)); // a round trip
    return `conn ${this.id}: ${sql}`;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

async function main(): Promise<void> {
  const pool = new Pool<FakeConnection>({
    create: async () => new FakeConnection(),
    destroy: (conn) => conn.close(),
    validate: (conn) => !conn.closed,
    minSize: 1,
    maxSize: 3,
    acquireTimeoutMs: 1000,
  });

  // use(): acquire, run, release; on error the connection is destroyed (or kept, if reuse says so).
  const results = await Promise.all(
    Array.from({ length: 6 }, (_, i) => pool.use((conn) => conn.query(`select ${i}`))),
  );
  console.log(results.join('\n'));

  // scoped(): every call inside one run() uses the same connection, released when run() ends.
  const scope = pool.scoped();
  await Promise.all(
    ['alice', 'bob'].map((user) =>
      scope.run(async () => {
        const a = await scope.proxy.query(`begin -- ${user}`);
        const b = await scope.proxy.query(`commit -- ${user}`);
        console.log(`${user}: ${a} / ${b}`);
      }),
    ),
  );

  const { created, acquired, destroyed, waitMs } = pool.stats;
  console.log(`created ${created}, acquired ${acquired}, destroyed ${destroyed}, p95 wait ${waitMs.p95} ms`);
  await pool.close();
  if (FakeConnection.opened > 3) throw new Error('more connections than maxSize');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
