// Registry servers the benchmark can start. Each `start()` resolves to a
// running target:
//   { name, url, host, pid, repoPrefix, creds, rssKiB(), hwmKiB(), resetPeakRss(), stop() }
// `repoPrefix` goes in front of image names (drydock's repository key), `creds`
// is { user, pass } or null.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCncfRegistry } from './cncf-registry.mjs';
import { startS3rver } from './s3rver.mjs';
import { freePort, procStatusKiB, resetPeakRss, stopChild, waitForHttp } from './proc.mjs';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

export const CNCF_BENCH_CREDS = Object.freeze({ user: 'bench', pass: 'bench-pass' });
export const DRYDOCK_BENCH_CREDS = Object.freeze({ user: 'admin', pass: 'bench-admin' });

function procAccessors(pid) {
  return {
    rssKiB: () => procStatusKiB(pid, 'VmRSS'),
    hwmKiB: () => procStatusKiB(pid, 'VmHWM'),
    resetPeakRss: () => resetPeakRss(pid),
  };
}

export const targets = {
  cncf: {
    description: 'CNCF distribution 2.8 (/usr/bin/docker-registry), filesystem storage, no auth (--cncf-auth: htpasswd)',
    async start({ cncfAuth = false } = {}) {
      const reg = await startCncfRegistry(cncfAuth ? { htpasswd: { ...CNCF_BENCH_CREDS } } : {});
      return {
        name: 'cncf',
        url: reg.url,
        host: reg.host,
        pid: reg.pid,
        repoPrefix: '',
        creds: cncfAuth ? { ...CNCF_BENCH_CREDS } : null,
        rssKiB: reg.rssKiB,
        hwmKiB: reg.hwmKiB,
        resetPeakRss: reg.resetPeakRss,
        stop: reg.stop,
      };
    },
  },

  drydock: {
    description: 'drydock (node dist/cli.js serve), embedded database, data in a temp dir, admin Basic auth',
    start: () => startDrydock({ name: 'drydock', databaseUrl: process.env.DRYDOCK_BENCH_DATABASE_URL }),
  },

  'cncf-s3': {
    description: 'CNCF distribution 2.8 with its s3 driver on an s3rver bucket, no auth',
    async start() {
      const s3 = await startS3rver('bench-cncf');
      const reg = await startCncfRegistry({ s3: s3.settings }).catch(async (e) => {
        await s3.close();
        throw e;
      });
      return {
        name: 'cncf-s3',
        url: reg.url,
        host: reg.host,
        pid: reg.pid,
        repoPrefix: '',
        creds: null,
        rssKiB: reg.rssKiB,
        hwmKiB: reg.hwmKiB,
        resetPeakRss: reg.resetPeakRss,
        stop: async () => {
          await reg.stop();
          await s3.close();
        },
      };
    },
  },

  'drydock-s3': {
    description: 'drydock with blobs on an s3rver bucket (S3 driver), embedded database',
    async start() {
      const s3 = await startS3rver('bench-drydock');
      const storage = { driver: 's3', s3: { ...s3.settings, prefix: 'bench' } };
      const target = await startDrydock({ name: 'drydock-s3', config: { storage } }).catch(async (e) => {
        await s3.close();
        throw e;
      });
      const stop = target.stop;
      target.stop = async () => {
        await stop();
        await s3.close();
      };
      return target;
    },
  },

  'drydock-pg': {
    description: 'drydock with a fresh database on the PostgreSQL server (DRYDOCK_BENCH_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres)',
    async start() {
      const admin = process.env.DRYDOCK_BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
      const { default: pg } = await import('pg');
      const dbName = `drydock_bench_${process.pid}_${Date.now()}`;
      const client = new pg.Client({ connectionString: admin });
      await client.connect();
      await client.query(`CREATE DATABASE ${dbName}`);
      await client.end();
      const url = new URL(admin);
      url.pathname = `/${dbName}`;
      const target = await startDrydock({ name: 'drydock-pg', databaseUrl: url.toString() });
      const stop = target.stop;
      let stopped;
      target.stop = () =>
        (stopped ??= (async () => {
          await stop();
          const c = new pg.Client({ connectionString: admin });
          await c.connect();
          await c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
          await c.end();
        })());
      return target;
    },
  },
};

async function startDrydock({ name, databaseUrl, config }) {
  // DRYDOCK_BENCH_CLI: benchmark another build of the CLI
  const cli = process.env.DRYDOCK_BENCH_CLI ?? join(REPO_ROOT, 'dist', 'cli.js');
  if (!existsSync(cli)) throw new Error(`${cli} not found: run \`npm run build\` first (\`npm run bench\` does)`);
  const dir = await mkdtemp(join(tmpdir(), 'drydock-bench-'));
  let child;
  try {
    const port = await freePort();
    const cwd = join(dir, 'cwd');
    await mkdir(cwd);
    // Same log level as the CNCF baseline; found by drydock's config search in its cwd.
    // JSON is YAML: the extra settings go in as they are.
    await writeFile(join(cwd, 'drydock.config.yaml'), JSON.stringify({ log: { level: 'warn' }, ...(config ?? {}) }) + '\n');
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith('DRYDOCK_') && k !== 'DATABASE_URL'),
    );
    if (databaseUrl) env.DATABASE_URL = databaseUrl;
    Object.assign(env, {
      DRYDOCK_PORT: String(port),
      DRYDOCK_HOST: '127.0.0.1',
      DRYDOCK_DATA_DIR: join(dir, 'data'),
      DRYDOCK_ADMIN_PASSWORD: DRYDOCK_BENCH_CREDS.pass,
      NODE_ENV: 'production',
    });
    const logPath = join(dir, 'drydock.log');
    const fd = openSync(logPath, 'a');
    try {
      child = spawn(process.execPath, [cli, 'serve'], { cwd, env, stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    const spawned = child;
    const url = `http://127.0.0.1:${port}`;
    try {
      const spawnError = new Promise((_, reject) => spawned.once('error', reject));
      spawnError.catch(() => undefined);
      await Promise.race([
        waitForHttp(`${url}/v2/`, { statuses: [200, 401], timeoutMs: 60000, child: spawned, describe: 'drydock' }),
        spawnError,
      ]);
    } catch (e) {
      let log = '';
      try {
        log = readFileSync(logPath, 'utf8').slice(-4000);
      } catch {
        log = '';
      }
      throw new Error(`${e instanceof Error ? e.message : String(e)}\n${log}`);
    }
    const pid = spawned.pid ?? 0;
    let stopped;
    return {
      name,
      url,
      host: `127.0.0.1:${port}`,
      pid,
      repoPrefix: 'docker-local/',
      creds: { ...DRYDOCK_BENCH_CREDS },
      ...procAccessors(pid),
      stop() {
        stopped ??= stopChild(spawned, 10000).then(() => rm(dir, { recursive: true, force: true }));
        return stopped;
      },
    };
  } catch (e) {
    if (child) await stopChild(child);
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

export function startTarget(name, opts = {}) {
  const t = targets[name];
  if (!t) throw new Error(`unknown target ${name} (known: ${Object.keys(targets).join(', ')})`);
  return t.start(opts);
}
