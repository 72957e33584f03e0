/**
 * buildah for tests: vfs storage under a caller-owned temp dir (no daemon, no
 * overlay mounts, nothing outside that dir), private credential files.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../bench/proc.mjs';
import { credsArg, isolatedEnv, type Creds } from './skopeo.js';

export interface BuildahOptions {
  /** Temp dir owned by the caller: storage goes to TMP/root and TMP/runroot. */
  tmp: string;
  timeoutMs?: number;
}

export interface BuildahResult {
  stdout: string;
  stderr: string;
}

/** Runs `buildah --storage-driver vfs --root TMP/root --runroot TMP/runroot ...args`. */
export async function buildah(args: string[], opts: BuildahOptions): Promise<BuildahResult> {
  const credDir = join(opts.tmp, 'buildah-creds');
  const authfile = join(credDir, 'auth.json');
  await mkdir(credDir, { recursive: true });
  // buildah refuses a REGISTRY_AUTH_FILE that does not exist
  await writeFile(authfile, JSON.stringify({ auths: {} }), { flag: 'wx' }).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST') throw e;
  });
  const { stdout, stderr } = await run(
    'buildah',
    ['--storage-driver', 'vfs', '--root', join(opts.tmp, 'root'), '--runroot', join(opts.tmp, 'runroot'), ...args],
    { timeoutMs: opts.timeoutMs ?? 120_000, env: { ...isolatedEnv(credDir, authfile), BUILDAH_ISOLATION: 'chroot' } },
  );
  return { stdout, stderr };
}

export interface ManifestListPushOptions {
  /** v2s2: Docker manifest list of schema 2 images; oci: OCI index of OCI images. */
  format: 'v2s2' | 'oci';
  timeoutMs?: number;
}

const ARCHES = ['amd64', 'arm64'] as const;

/**
 * Builds two tiny images FROM scratch (linux/amd64, linux/arm64), puts them
 * in a manifest list and pushes it with `buildah manifest push --all` to
 * `docker://HOST/REF`. Returns the digest of the pushed list.
 */
export async function pushManifestListWithBuildah(
  host: string,
  ref: string,
  creds: Creds,
  tmp: string,
  opts: ManifestListPushOptions,
): Promise<string> {
  const b = (args: string[]) => buildah(args, { tmp, timeoutMs: opts.timeoutMs });
  const ctx = join(tmp, 'buildah-context');
  await mkdir(ctx, { recursive: true });
  const listName = `localhost/drydock-test-list-${opts.format}-${process.pid}-${Date.now()}`;
  const images: string[] = [];
  for (const arch of ARCHES) {
    const file = join(ctx, `hello-${arch}.txt`);
    await writeFile(file, `hello from linux/${arch} (${opts.format})\n`);
    const container = (await b(['from', 'scratch'])).stdout.trim();
    try {
      await b(['copy', container, file, '/hello.txt']);
      await b(['config', '--os', 'linux', '--arch', arch, '--label', `drydock.test.arch=${arch}`, container]);
      const image = `${listName}-${arch}`;
      await b(['commit', '--quiet', '--format', opts.format === 'v2s2' ? 'docker' : 'oci', container, image]);
      images.push(image);
    } finally {
      await b(['rm', container]);
    }
  }
  await b(['manifest', 'create', listName]);
  for (const image of images) await b(['manifest', 'add', listName, `containers-storage:${image}`]);
  const digestFile = join(tmp, `buildah-digest-${Date.now()}`);
  await b([
    'manifest',
    'push',
    '--all',
    '--format',
    opts.format,
    '--tls-verify=false',
    '--creds',
    credsArg(creds),
    '--digestfile',
    digestFile,
    listName,
    `docker://${host}/${ref}`,
  ]);
  const digest = (await readFile(digestFile, 'utf8')).trim();
  if (!/^sha256:[a-f0-9]{64}$/.test(digest)) throw new Error(`buildah wrote no digest: ${JSON.stringify(digest)}`);
  return digest;
}
