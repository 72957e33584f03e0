/**
 * A real drydock process for end-to-end tests: `node dist/cli.js serve` (built
 * by `npm test` before jest runs) on a free port of 127.0.0.1, in a temp
 * working directory (where `config` is written as drydock.config.yaml), with
 * its own data dir unless one is passed.
 *
 *   const dd = await startDrydock();
 *   await skopeoCopy(`oci:${dir}:1.0`, `docker://${dd.host}/docker-local/team/app:1.0`, { destCreds: dd.creds });
 *   await dd.stop(); // SIGTERM, waits for the exit, removes the temp dirs it created
 *
 * Every process started here is also stopped by `stopAllDrydocks()` (call it in
 * afterAll so a failed test leaves nothing running).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { freePort, procStatusKiB, resetPeakRss, stopChild, waitForHttp } from '../../bench/proc.mjs';

/** The built CLI (`npm run build`). */
export const DRYDOCK_CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

/** Environment variables drydock reads; never inherited from the test runner's environment. */
const DRYDOCK_ENV = [
  'DRYDOCK_PORT',
  'DRYDOCK_HOST',
  'DRYDOCK_DATA_DIR',
  'DRYDOCK_ADMIN_PASSWORD',
  'DRYDOCK_CONFIG',
  'DRYDOCK_BASE_URL',
  'DRYDOCK_LOG_LEVEL',
  'DATABASE_URL',
  'DRYDOCK_OPERATOR_PORT',
  'DRYDOCK_WATCH_NAMESPACES',
  'DRYDOCK_NAMESPACE',
  'KUBECONFIG',
];

/** Marker of the one-time console message with the generated admin password (src/registry/bootstrap.ts). */
export const GENERATED_PASSWORD_RE = /generated password: (\S+)/g;

export interface StartDrydockOptions {
  /** Data dir to use (kept on stop); a new temp dir (removed on stop) otherwise. */
  dataDir?: string;
  /**
   * Extra environment, applied last. `DRYDOCK_ADMIN_PASSWORD: ''` leaves the
   * password unset (drydock generates one; `adminPassword` is read from stdout).
   */
  env?: Record<string, string>;
  /** Written as drydock.config.yaml in the process's temp working directory. */
  config?: object;
  /** `DATABASE_URL`; embedded PGlite under the data dir otherwise. */
  databaseUrl?: string;
  /** Listen on this port (e.g. to restart on the same address); a free one otherwise. */
  port?: number;
  /** How long to wait for `GET /v2/` to answer 401 (default 60 s: a new PGlite database takes seconds). */
  readyTimeoutMs?: number;
}

export interface DrydockProcess {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `127.0.0.1:PORT`, for image references. */
  host: string;
  port: number;
  pid: number;
  dataDir: string;
  /** The temp working directory (holds drydock.config.yaml when `config` was given). */
  cwd: string;
  /** The admin password: the configured one, or the generated one printed at first start ('' if neither). */
  adminPassword: string;
  /** `admin:<password>`, as skopeo's `--creds` takes it. */
  creds: string;
  /** `Basic …` header value for the admin user. */
  authorization: string;
  child: ChildProcess;
  /**
   * Sends `signal` (default SIGTERM), waits for the exit (SIGKILL after 10 s),
   * removes the temp dirs this helper created. Resolves with the exit code
   * (null when a signal ended the process). Idempotent.
   */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Resolves with the exit code (null for a signal) once the process has exited. */
  exited: Promise<number | null>;
  /** Current resident set size (VmRSS), 0 once exited. */
  rssKiB(): number;
  /** Peak resident set size (VmHWM) since start or the last `resetPeak()`, 0 once exited. */
  hwmKiB(): number;
  /** Resets VmHWM to the current RSS; false where /proc does not allow it. */
  resetPeak(): boolean;
  stdout(): string;
  stderr(): string;
}

const running = new Set<DrydockProcess>();

function basic(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}

/** The environment a drydock child gets: the runner's, minus every drydock setting, plus `env`. */
function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { ...process.env };
  for (const name of DRYDOCK_ENV) delete base[name];
  // jest's ESM flags are not for the child.
  delete base.NODE_OPTIONS;
  return { ...base, ...env };
}

/** `node dist/cli.js <command>` with its output collected. */
function spawnCli(command: string, cwd: string, env: Record<string, string>) {
  const child = spawn(process.execPath, [DRYDOCK_CLI, command], { cwd, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (c: Buffer) => out.push(c));
  child.stderr!.on('data', (c: Buffer) => err.push(c));
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(null));
  });
  return {
    child,
    exited,
    stdout: () => Buffer.concat(out).toString('utf8'),
    stderr: () => Buffer.concat(err).toString('utf8'),
  };
}

/** Starts `node dist/cli.js serve` and resolves once `GET /v2/` answers 401. */
export async function startDrydock(opts: StartDrydockOptions = {}): Promise<DrydockProcess> {
  const cwd = await mkdtemp(join(tmpdir(), 'drydock-e2e-'));
  const dataDir = opts.dataDir ?? join(cwd, 'data');
  if (opts.config !== undefined) await writeFile(join(cwd, 'drydock.config.yaml'), YAML.stringify(opts.config));
  const port = opts.port ?? (await freePort());
  const env: Record<string, string> = {
    DRYDOCK_HOST: '127.0.0.1',
    DRYDOCK_PORT: String(port),
    DRYDOCK_DATA_DIR: dataDir,
    DRYDOCK_ADMIN_PASSWORD: `e2e-${randomBytes(9).toString('base64url')}`,
    ...(opts.databaseUrl !== undefined ? { DATABASE_URL: opts.databaseUrl } : {}),
    ...opts.env,
  };

  const { child, exited, stdout, stderr } = spawnCli('serve', cwd, env);

  let stopping: Promise<number | null> | undefined;
  const stop = (signal: NodeJS.Signals = 'SIGTERM') =>
    (stopping ??= (async () => {
      if (signal === 'SIGTERM') await stopChild(child, 10_000);
      else if (child.exitCode === null && child.signalCode === null) {
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.kill(signal);
        await exited;
        clearTimeout(timer);
      }
      const code = await exited;
      running.delete(proc);
      // The temp cwd holds the config file and, unless one was passed, the data dir.
      await rm(cwd, { recursive: true, force: true });
      return code;
    })());

  const url = `http://127.0.0.1:${port}`;
  const proc: DrydockProcess = {
    url,
    host: `127.0.0.1:${port}`,
    port,
    pid: child.pid ?? 0,
    dataDir,
    cwd,
    adminPassword: env.DRYDOCK_ADMIN_PASSWORD ?? '',
    creds: '',
    authorization: '',
    child,
    stop,
    exited,
    rssKiB: () => (child.pid ? procStatusKiB(child.pid, 'VmRSS') : 0),
    hwmKiB: () => (child.pid ? procStatusKiB(child.pid, 'VmHWM') : 0),
    resetPeak: () => (child.pid ? resetPeakRss(child.pid) : false),
    stdout,
    stderr,
  };
  running.add(proc);

  try {
    await waitForHttp(`${url}/v2/`, { statuses: [401], timeoutMs: opts.readyTimeoutMs ?? 60_000, child, describe: 'drydock' });
  } catch (e) {
    await stop('SIGKILL');
    throw new Error(`${(e as Error).message}\n--- drydock stdout ---\n${stdout()}\n--- drydock stderr ---\n${stderr()}`, { cause: e });
  }
  if (!proc.adminPassword) {
    // Nothing configured: the generated password is printed once, before the server listens.
    const printed = [...stdout().matchAll(GENERATED_PASSWORD_RE)];
    proc.adminPassword = printed[0]?.[1] ?? '';
  }
  proc.creds = `admin:${proc.adminPassword}`;
  proc.authorization = basic('admin', proc.adminPassword);
  return proc;
}

export interface OperatorProcess {
  /** `http://127.0.0.1:PORT` of its `/metrics` and `/healthz`. */
  url: string;
  child: ChildProcess;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  stdout(): string;
  stderr(): string;
}

/**
 * Starts `node dist/cli.js operator` against the Kubernetes API named by
 * `kubeconfig` and the registry database `databaseUrl`; resolves once its
 * `/healthz` answers.
 */
export async function startDrydockOperator(opts: { kubeconfig: string; databaseUrl: string; env?: Record<string, string> }): Promise<OperatorProcess> {
  const cwd = await mkdtemp(join(tmpdir(), 'drydock-operator-'));
  const port = await freePort();
  const env: Record<string, string> = {
    KUBECONFIG: opts.kubeconfig,
    DATABASE_URL: opts.databaseUrl,
    DRYDOCK_OPERATOR_PORT: String(port),
    DRYDOCK_NAMESPACE: 'drydock',
    DRYDOCK_DATA_DIR: join(cwd, 'data'),
    ...opts.env,
  };
  const { child, exited, stdout, stderr } = spawnCli('operator', cwd, env);
  let stopping: Promise<number | null> | undefined;
  const stop = (signal: NodeJS.Signals = 'SIGTERM') =>
    (stopping ??= (async () => {
      if (signal === 'SIGTERM') await stopChild(child, 10_000);
      else child.kill(signal);
      const code = await exited;
      await rm(cwd, { recursive: true, force: true });
      return code;
    })());
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${url}/healthz`, { statuses: [200], timeoutMs: 30_000, child, describe: 'drydock operator' });
  } catch (e) {
    await stop('SIGKILL');
    throw new Error(`${(e as Error).message}\n--- operator stdout ---\n${stdout()}\n--- operator stderr ---\n${stderr()}`, { cause: e });
  }
  return { url, child, stop, stdout, stderr };
}

/** Stops every drydock process started by this module that is still running (for afterAll). */
export async function stopAllDrydocks(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop('SIGKILL')));
}

export interface CliResult {
  /** Exit code; null when the process was killed (timeout). */
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `node dist/cli.js ...args` to completion (SIGKILL after `timeoutMs`) in
 * `cwd` with a drydock-free environment plus `env`. Never rejects on a non-zero
 * exit: the caller checks `code`.
 */
export function runDrydockCli(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [DRYDOCK_CLI, ...args], {
      cwd: opts.cwd ?? tmpdir(),
      env: childEnv(opts.env ?? {}),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}
