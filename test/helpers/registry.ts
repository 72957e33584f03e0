import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/core/config/index.js';
import { silentLogger } from '../../src/core/log.js';
import { createMetrics } from '../../src/core/metrics.js';
import { openMetadataStore } from '../../src/metadata/pg/store.js';
import type { MetadataStore } from '../../src/metadata/store.js';
import { startServer, type RunningServer } from '../../src/registry/server.js';

export const ADMIN_PASSWORD = 'test-admin-password';
export const ADMIN_AUTH = `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}`;

/** fetch options where the body may also be a Buffer (copied into a Uint8Array). */
export type TestRequestInit = Omit<RequestInit, 'body'> & { body?: RequestInit['body'] | Buffer; auth?: string | null };

export interface TestRegistry {
  running: RunningServer;
  url: string;
  /** `127.0.0.1:PORT`, for image references. */
  host: string;
  dataDir: string;
  /** fetch against the registry with admin credentials unless `auth: null` (anonymous) or another header. */
  fetch(path: string, init?: TestRequestInit): Promise<Response>;
  close(): Promise<void>;
}

/**
 * A registry on a free port with its own data dir and the given config
 * overrides. Pass `store` to share one database across registries in a test
 * file (PGlite takes seconds to create); by default an in-memory PGlite.
 */
export async function startTestRegistry(
  opts: { config?: Record<string, unknown>; store?: MetadataStore; dataDir?: string } = {},
): Promise<TestRegistry> {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'drydock-test-')));
  const overrides = opts.config ?? {};
  const config = parseConfig({
    log: { level: 'silent' },
    ...overrides,
    server: { host: '127.0.0.1', port: 0, ...((overrides.server as object) ?? {}) },
    auth: { adminPassword: ADMIN_PASSWORD, ...((overrides.auth as object) ?? {}) },
    dataDir,
  });
  const ownStore = !opts.store;
  const store = opts.store ?? (await openMetadataStore({}));
  const running = await startServer({ config, log: silentLogger(), metrics: createMetrics(), store });
  const host = `127.0.0.1:${running.port}`;
  return {
    running,
    url: running.url,
    host,
    dataDir,
    fetch: (path, init = {}) => {
      const headers = new Headers(init.headers);
      const auth = init.auth === undefined ? ADMIN_AUTH : init.auth;
      if (auth !== null && !headers.has('authorization')) headers.set('authorization', auth);
      const body = Buffer.isBuffer(init.body) ? new Uint8Array(init.body) : init.body;
      return fetch(`${running.url}${path}`, { ...init, body, headers, redirect: 'manual' });
    },
    close: async () => {
      await running.close();
      if (ownStore) await store.close();
      if (!opts.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
