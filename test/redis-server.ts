import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as net from 'node:net';

/** A real redis-server on a free loopback port, without persistence, for one test file. */
export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** Kills it (SIGKILL): all data is gone, as after a crash. */
  kill(): Promise<void>;
  /** Starts it again on the same port, empty. */
  restart(): Promise<void>;
  stop(): Promise<void>;
  /** SIGSTOP: connections stay open, nothing answers. */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
}

/**
 * A redis-server for the tests of a describe block, started before them and stopped after; the
 * block is skipped (loudly) on a machine without one, and fails on CI, which installs it.
 * Returns the server's getter.
 */
export function useRedisServer(): () => RedisServer {
  let server: RedisServer | undefined;
  before(async function () {
    const bin = redisServerPath();
    if (!bin) {
      if (process.env.CI) throw new Error('redis-server is not installed');
      console.log('      (skipped: no redis-server on this machine; .ci/run installs it)');
      this.skip();
    }
    server = await startRedis(bin as string);
  });
  after(async () => {
    await server?.stop();
  });
  return () => server as RedisServer;
}

export function redisServerPath(): string | undefined {
  for (const candidate of ['redis-server', '/usr/bin/redis-server', '/usr/local/bin/redis-server']) {
    try {
      execFileSync(candidate, ['--version'], { stdio: 'ignore' });
      return candidate;
    } catch {
      // try the next
    }
  }
  return undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.end();
        resolve();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadline) reject(new Error(`redis-server did not listen on ${port}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

export async function startRedis(bin: string): Promise<RedisServer> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const launch = async () => {
    child = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    await waitForPort(port, 10_000);
  };
  const kill = async () => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
  };
  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill,
    restart: launch,
    stop: kill,
    pause: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
  };
}

/** A local Redis Cluster of three masters on loopback ports, made with redis-cli --cluster create. */
export interface RedisCluster {
  readonly nodes: Array<{ host: string; port: number }>;
  stop(): Promise<void>;
}

export async function startRedisCluster(bin: string, dir: string): Promise<RedisCluster> {
  const ports = [await freePort(), await freePort(), await freePort()];
  const children: ChildProcess[] = [];
  for (const port of ports) {
    children.push(
      spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--cluster-enabled', 'yes',
        '--cluster-config-file', `${dir}/nodes-${port}.conf`, '--dir', dir], { stdio: 'ignore' }),
    );
  }
  const stop = async () => {
    await Promise.all(children.map((c) => new Promise<void>((resolve) => {
      if (c.exitCode !== null) return resolve();
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    })));
  };
  try {
    for (const port of ports) await waitForPort(port, 10_000);
    const cli = bin.replace(/redis-server$/, 'redis-cli');
    execFileSync(cli, ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { stdio: 'ignore' });
    // The slots are assigned; wait until every node agrees the cluster is up.
    const deadline = Date.now() + 15_000;
    for (const port of ports) {
      while (!execFileSync(cli, ['-p', String(port), 'cluster', 'info'], { encoding: 'utf8' }).includes('cluster_state:ok')) {
        if (Date.now() > deadline) throw new Error('the Redis cluster did not come up');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { nodes: ports.map((port) => ({ host: '127.0.0.1', port })), stop };
}
