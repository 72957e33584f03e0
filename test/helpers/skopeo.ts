/**
 * skopeo for tests. Every call runs with its own throw-away credential
 * locations (REGISTRY_AUTH_FILE, DOCKER_CONFIG, XDG_CONFIG_HOME in a temp dir,
 * or the `authfile` the caller passes), so tests never read or write the
 * user's auth files. TLS verification is always off (test registries are
 * plain HTTP on 127.0.0.1).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../bench/proc.mjs';
import { sha256Digest } from '../../bench/oci-layout.mjs';

/** `{ user, pass }` or the `user:pass` string skopeo takes. */
export type Creds = { user: string; pass: string } | string;

export interface SkopeoOptions {
  timeoutMs?: number;
  /** Auth file to use (e.g. one written by skopeoLogin); a temp one otherwise. */
  authfile?: string;
  /** Written to skopeo's stdin. */
  input?: string;
}

export interface SkopeoResult {
  stdout: string;
  stderr: string;
  stdoutBuffer: Buffer;
}

export function credsArg(creds: Creds): string {
  return typeof creds === 'string' ? creds : `${creds.user}:${creds.pass}`;
}

/**
 * Environment with private credential locations inside `dir`. Shared with
 * the buildah helper.
 */
export function isolatedEnv(dir: string, authfile?: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    REGISTRY_AUTH_FILE: authfile ?? join(dir, 'auth.json'),
    DOCKER_CONFIG: join(dir, 'docker'),
    XDG_CONFIG_HOME: join(dir, 'xdg'),
  };
}

/** Runs `skopeo ...args`; rejects with skopeo's stderr in the message on a non-zero exit. */
export async function skopeo(args: string[], opts: SkopeoOptions = {}): Promise<SkopeoResult> {
  const dir = await mkdtemp(join(tmpdir(), 'skopeo-'));
  try {
    return await run('skopeo', args, {
      timeoutMs: opts.timeoutMs ?? 120_000,
      env: isolatedEnv(dir, opts.authfile),
      input: opts.input,
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function withTransport(ref: string): string {
  return /^[a-z-]+:/.test(ref) && !/^[^/]+:\d+\//.test(ref) ? ref : `docker://${ref}`;
}

export interface SkopeoCopyOptions {
  /** `--all`: copy every image of an index / manifest list. */
  all?: boolean;
  /** Credentials for whichever side is a docker:// reference. */
  creds?: Creds;
  srcCreds?: Creds;
  destCreds?: Creds;
  /** `--format`: convert the manifest to OCI or Docker schema 2. */
  format?: 'oci' | 'v2s2';
  authfile?: string;
  timeoutMs?: number;
  /** Extra flags placed before the references. */
  extraArgs?: string[];
}

/** `skopeo copy` with TLS verification off on both sides. */
export function skopeoCopy(src: string, dest: string, opts: SkopeoCopyOptions = {}): Promise<SkopeoResult> {
  const args = ['copy', '--src-tls-verify=false', '--dest-tls-verify=false'];
  if (opts.all) args.push('--all');
  if (opts.format) args.push('--format', opts.format);
  const srcCreds = opts.srcCreds ?? (src.startsWith('docker://') ? opts.creds : undefined);
  const destCreds = opts.destCreds ?? (dest.startsWith('docker://') ? opts.creds : undefined);
  if (srcCreds) args.push('--src-creds', credsArg(srcCreds));
  if (destCreds) args.push('--dest-creds', credsArg(destCreds));
  args.push(...(opts.extraArgs ?? []), src, dest);
  return skopeo(args, { authfile: opts.authfile, timeoutMs: opts.timeoutMs });
}

export interface RawManifest {
  /** The manifest bytes exactly as the registry served them. */
  raw: Buffer;
  /** sha256 of `raw`. */
  digest: string;
  mediaType: string | undefined;
  manifest: Record<string, unknown>;
}

/**
 * `skopeo inspect --raw REF`. `ref` is `HOST/repo/img:tag`, `HOST/...@sha256:...`
 * or a full transport reference (`docker://...`, `oci:DIR:tag`).
 */
export async function skopeoInspectRaw(
  ref: string,
  creds?: Creds,
  opts: { authfile?: string; timeoutMs?: number } = {},
): Promise<RawManifest> {
  const args = ['inspect', '--raw', '--tls-verify=false'];
  if (creds) args.push('--creds', credsArg(creds));
  args.push(withTransport(ref));
  const { stdoutBuffer } = await skopeo(args, opts);
  const manifest = JSON.parse(stdoutBuffer.toString('utf8')) as Record<string, unknown>;
  return {
    raw: stdoutBuffer,
    digest: sha256Digest(stdoutBuffer),
    mediaType: typeof manifest.mediaType === 'string' ? manifest.mediaType : undefined,
    manifest,
  };
}

/** `skopeo login` into `authfile` (password through stdin). */
export async function skopeoLogin(host: string, user: string, pass: string, authfile: string): Promise<void> {
  await skopeo(['login', '--tls-verify=false', '--authfile', authfile, '--username', user, '--password-stdin', host], {
    authfile,
    input: pass,
  });
}
