// Starts a CNCF distribution registry (/usr/bin/docker-registry, 2.8) on
// 127.0.0.1 with filesystem storage in a temp dir. Shared by the benchmark
// harness and test/helpers/cncf-registry.ts (types in cncf-registry.d.mts).
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, procStatusKiB, resetPeakRss, stopChild, waitForHttp } from './proc.mjs';

export const REGISTRY_BINARY = '/usr/bin/docker-registry';

const BCRYPT_ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function bcryptSalt(cost = 5) {
  const bytes = randomBytes(22);
  let s = '';
  for (let i = 0; i < 21; i++) s += BCRYPT_ALPHABET[bytes[i] % 64];
  // the 22nd character only carries 2 bits: keep it canonical
  s += '.Oeu'[bytes[21] % 4];
  return `$2b$${String(cost).padStart(2, '0')}$${s}`;
}

/**
 * One htpasswd line `user:$2b$...` (bcrypt, what distribution requires).
 * Uses `htpasswd -Bbn` when installed, else the system crypt(3) through perl
 * (libxcrypt supports bcrypt).
 */
export function htpasswdLine(user, pass) {
  if (user.includes(':')) throw new Error('htpasswd user must not contain ":"');
  const viaHtpasswd = spawnSync('htpasswd', ['-Bbn', user, pass], { encoding: 'utf8' });
  if (!viaHtpasswd.error && viaHtpasswd.status === 0) {
    const line = viaHtpasswd.stdout.split('\n').find((l) => l.startsWith(`${user}:`));
    if (line) return line.trim();
  }
  const viaPerl = spawnSync('perl', ['-e', 'print crypt($ARGV[0], $ARGV[1])', pass, bcryptSalt()], { encoding: 'utf8' });
  const hash = viaPerl.stdout ?? '';
  if (viaPerl.error || viaPerl.status !== 0 || !/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash)) {
    throw new Error(`cannot make a bcrypt hash: no htpasswd, and perl crypt() gave ${JSON.stringify(hash)} ${viaPerl.stderr ?? ''}`);
  }
  return `${user}:${hash}`;
}

export function registryConfigYaml({ port, rootDir, htpasswdPath, s3 }) {
  // s3: { endpoint, bucket, region, accessKeyId, secretAccessKey } — distribution's s3 driver against an S3-compatible endpoint.
  const storage = s3
    ? [
        '  s3:',
        `    accesskey: ${s3.accessKeyId}`,
        `    secretkey: ${s3.secretAccessKey}`,
        `    region: ${s3.region}`,
        `    regionendpoint: ${s3.endpoint}`,
        `    bucket: ${s3.bucket}`,
        '    secure: false',
        '    v4auth: true',
        '    rootdirectory: /cncf',
      ]
    : ['  filesystem:', `    rootdirectory: ${JSON.stringify(rootDir)}`];
  const lines = [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    ...storage,
    '  cache:',
    '    blobdescriptor: inmemory',
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    `  secret: ${randomBytes(16).toString('hex')}`,
    '  headers:',
    '    X-Content-Type-Options: [nosniff]',
  ];
  if (htpasswdPath) {
    lines.push('auth:', '  htpasswd:', '    realm: drydock-test', `    path: ${JSON.stringify(htpasswdPath)}`);
  }
  return lines.join('\n') + '\n';
}

/**
 * Starts the registry and waits until GET /v2/ answers (200, or 401 with
 * htpasswd). Retries with another port when the free port got taken meanwhile.
 */
export async function startCncfRegistry(opts = {}) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await launchOnce(opts);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      if (attempt >= 3 || !/address already in use/i.test(msg)) throw e;
    }
  }
}

async function launchOnce(opts) {
  const dir = await mkdtemp(join(tmpdir(), 'cncf-registry-'));
  let child;
  let logFd = -1;
  try {
    const port = await freePort();
    const htpasswdPath = opts.htpasswd ? join(dir, 'htpasswd') : undefined;
    if (opts.htpasswd && htpasswdPath) {
      await writeFile(htpasswdPath, htpasswdLine(opts.htpasswd.user, opts.htpasswd.pass) + '\n');
    }
    const configPath = join(dir, 'config.yml');
    await writeFile(configPath, registryConfigYaml({ port, rootDir: join(dir, 'data'), htpasswdPath, s3: opts.s3 }));
    const logPath = join(dir, 'registry.log');
    logFd = openSync(logPath, 'a');
    // The aws-sdk-go of distribution 2.8 panics on AWS_CA_BUNDLE with a custom transport: leave it out.
    const { AWS_CA_BUNDLE: _bundle, ...env } = process.env;
    child = spawn(REGISTRY_BINARY, ['serve', configPath], { stdio: ['ignore', logFd, logFd], env });
    closeSync(logFd);
    logFd = -1;
    const spawned = child;
    const spawnError = new Promise((_, reject) => spawned.once('error', reject));
    spawnError.catch(() => undefined);
    const url = `http://127.0.0.1:${port}`;
    try {
      await Promise.race([
        waitForHttp(`${url}/v2/`, { statuses: opts.htpasswd ? [401] : [200], child: spawned, describe: 'docker-registry', timeoutMs: 15000 }),
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
      url,
      host: `127.0.0.1:${port}`,
      port,
      pid,
      dataDir: join(dir, 'data'),
      rssKiB: () => procStatusKiB(pid, 'VmRSS'),
      hwmKiB: () => procStatusKiB(pid, 'VmHWM'),
      resetPeakRss: () => resetPeakRss(pid),
      stop() {
        stopped ??= stopChild(spawned).then(() => rm(dir, { recursive: true, force: true }));
        return stopped;
      },
    };
  } catch (e) {
    if (logFd >= 0) closeSync(logFd);
    if (child) await stopChild(child);
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}
