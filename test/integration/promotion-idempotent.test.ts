/**
 * Promotion under a request id (the operator's `Promotion` resource uid), in
 * process through PromotionService: one id, one promotion — asked again after
 * a lost answer, asked concurrently, or reused for another request — and a
 * failed promotion records nothing, so its retry runs. On embedded PGlite and
 * on a PostgreSQL server (where concurrent calls really overlap).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { MetadataUnavailableError } from '../../src/metadata/errors.js';
import { openMetadataStore } from '../../src/metadata/pg/store.js';
import type { MetadataStore } from '../../src/metadata/store.js';
import type { Identity } from '../../src/registry/auth/identity.js';
import type { PromotionContext, PromotionRequest, PromotionResult, PromotionService } from '../../src/registry/service/promotion.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { pushImage, uniqueImage } from '../helpers/oci-client.js';

/** What the operator acts as: an admin (every right). */
const OPERATOR: Identity = { kind: 'user', name: 'system', admin: true, groups: [] };
/** A user with no grants at all. */
const NOBODY: Identity = { kind: 'user', name: 'nobody', admin: false, groups: [] };

interface Backend {
  name: string;
  open(): Promise<{ store?: MetadataStore; close(): Promise<void> }>;
}

const backends: Backend[] = [
  // startTestRegistry's own in-memory PGlite.
  { name: 'PGlite', open: async () => ({ close: async () => undefined }) },
  {
    name: 'PostgreSQL server',
    open: async () => {
      const db: TestDatabase = await createTestDatabase();
      const store = await openMetadataStore({ databaseUrl: db.url, poolSize: 8 });
      return {
        store,
        close: async () => {
          await store.close();
          await db.drop();
        },
      };
    },
  },
];

describe.each(backends)('promotion under a request id ($name)', (backend) => {
  let reg: TestRegistry;
  let store: MetadataStore;
  let promotion: PromotionService;
  let closeBackend: () => Promise<void> = async () => undefined;

  beforeAll(async () => {
    const opened = await backend.open();
    closeBackend = opened.close;
    reg = await startTestRegistry(opened.store ? { store: opened.store } : {});
    store = reg.running.services.store;
    promotion = reg.running.services.promotion;
    for (const key of ['dev', 'prod']) {
      const r = await reg.fetch(`/api/repositories/${key}`, {
        method: 'PUT',
        body: JSON.stringify({ key, rclass: 'local' }),
        headers: { 'content-type': 'application/json' },
      });
      expect(r.status).toBe(200);
      await r.body?.cancel();
    }
  });
  afterAll(async () => {
    await reg?.close();
    await closeBackend();
  });

  function promote(request: PromotionRequest, ctx: Partial<PromotionContext> = {}): Promise<PromotionResult> {
    return promotion.promote(request, { identity: OPERATOR, ...ctx });
  }

  /** Promotions into prod of `image`, and the successful promotion audit entries naming it. */
  async function history(image: string): Promise<{ promotions: number; audited: number }> {
    const promotions = (await store.promotions.list('prod', { limit: 1000 })).filter((p) => p.targetImage === image).length;
    const audited = (await store.audit.list({ limit: 1000, action: 'promotion' })).filter(
      (e) => e.outcome === 'success' && (e.target === `dev/${image}` || e.target?.startsWith(`dev/${image}:`)),
    ).length;
    return { promotions, audited };
  }

  it('a copy asked twice under one id: the second resolves the same result and promotes nothing', async () => {
    const image = uniqueImage('again');
    const img = await pushImage(reg, `dev/${image}`, '1.0');
    const request = { sourceRepo: 'dev', targetRepo: 'prod', dockerRepository: image, tag: '1.0', copy: true };
    const requestId = randomUUID();
    const first = await promote(request, { requestId });
    expect(first).toMatchObject({ sourceRepo: 'dev', targetRepo: 'prod', image, targetImage: image, copy: true, digest: img.digest });
    const tagUpdated = (await store.tags.records('prod', image))[0]!.updatedAt;

    expect(await promote(request, { requestId })).toEqual(first);
    expect(await history(image)).toEqual({ promotions: 1, audited: 1 });
    expect((await store.tags.records('prod', image))[0]!.updatedAt).toEqual(tagUpdated);
    // The audit entry says which request it was.
    const [entry] = await store.audit.list({ limit: 1, action: 'promotion' });
    expect(entry?.details).toMatchObject({ requestId });
    // Without an id nothing is deduplicated: that is a second promotion.
    await promote(request);
    expect(await history(image)).toEqual({ promotions: 2, audited: 2 });
  });

  it('a move asked twice does not fail (its tag has left) nor move the tag pushed again since', async () => {
    const image = uniqueImage('move-again');
    const img = await pushImage(reg, `dev/${image}`, '1.0');
    const request = { sourceRepo: 'dev', targetRepo: 'prod', dockerRepository: image, tag: '1.0' };
    const requestId = randomUUID();
    const first = await promote(request, { requestId });
    expect(await store.tags.resolve('dev', image, '1.0')).toBeUndefined();
    expect(await store.tags.resolve('prod', image, '1.0')).toBe(img.digest);

    // The answer was lost; meanwhile somebody pushed a new 1.0 to dev.
    const next = await pushImage(reg, `dev/${image}`, '1.0');
    expect(await promote(request, { requestId })).toEqual(first);
    expect(await store.tags.resolve('dev', image, '1.0')).toBe(next.digest);
    expect(await store.tags.resolve('prod', image, '1.0')).toBe(img.digest);
    expect(await history(image)).toEqual({ promotions: 1, audited: 1 });
  });

  it.each([
    ['copy', true],
    ['move', false],
  ])('concurrent calls under one id (%s): one promotion, every caller gets its result', async (_name, copy) => {
    const image = uniqueImage(`race-${_name}`);
    const img = await pushImage(reg, `dev/${image}`, '1.0');
    const request = { sourceRepo: 'dev', targetRepo: 'prod', dockerRepository: image, tag: '1.0', copy };
    const requestId = randomUUID();
    const results = await Promise.all(Array.from({ length: 6 }, () => promote(request, { requestId })));
    for (const r of results) expect(r).toEqual(results[0]);
    expect(results[0]).toMatchObject({ digest: img.digest, copy });
    expect(await history(image)).toEqual({ promotions: 1, audited: 1 });
    expect(await store.tags.resolve('prod', image, '1.0')).toBe(img.digest);
    expect(await store.tags.resolve('dev', image, '1.0')).toBe(copy ? img.digest : undefined);
  });

  // The two interleavings of concurrent calls, made deterministic: the second
  // call is held at one point while the first runs to its commit.

  it('a move whose caller looked the id up before a concurrent call committed, and then finds the tag gone, resolves the recorded result', async () => {
    const image = uniqueImage('late-plan');
    const img = await pushImage(reg, `dev/${image}`, '1.0');
    const request = { sourceRepo: 'dev', targetRepo: 'prod', dockerRepository: image, tag: '1.0' };
    const requestId = randomUUID();
    let firstDone!: () => void;
    const firstCommitted = new Promise<void>((resolve) => (firstDone = resolve));
    const lookup = store.promotions.getRequest;
    let held = false;
    // The second call's first look: nothing recorded yet; it then waits for the first call.
    Object.assign(store.promotions, {
      getRequest: async (id: string) => {
        const found = await lookup.call(store.promotions, id);
        if (!held) {
          held = true;
          await firstCommitted;
        }
        return found;
      },
    });
    try {
      const second = promote(request, { requestId });
      await new Promise((resolve) => setTimeout(resolve, 20));
      const first = await promote(request, { requestId });
      firstDone();
      expect(await second).toEqual(first);
    } finally {
      Reflect.deleteProperty(store.promotions, 'getRequest');
    }
    expect(await store.tags.resolve('prod', image, '1.0')).toBe(img.digest);
    expect(await history(image)).toEqual({ promotions: 1, audited: 1 });
  });

  it('a call that prepared before a concurrent call committed finds the id recorded when it claims it, and writes nothing', async () => {
    const image = uniqueImage('late-claim');
    const img = await pushImage(reg, `dev/${image}`, '1.0');
    // A copy: its source is unchanged by the first call, so only the claim stops the second from promoting again.
    const request = { sourceRepo: 'dev', targetRepo: 'prod', dockerRepository: image, tag: '1.0', copy: true };
    const requestId = randomUUID();
    let firstDone!: () => void;
    const firstCommitted = new Promise<void>((resolve) => (firstDone = resolve));
    const original = store.transaction;
    let held = false;
    let writesOfSecond = 0;
    // The second call's transaction starts only once the first has committed,
    // and counts the promotion writes it makes.
    store.transaction = async <T,>(fn: (tx: MetadataStore) => Promise<T>): Promise<T> => {
      if (held) return original.call(store, fn) as Promise<T>;
      held = true;
      await firstCommitted;
      return original.call(store, (tx) => {
        const count = <G extends object>(group: G): G =>
          new Proxy(group, {
            get: (target, prop, receiver) => {
              const value = Reflect.get(target, prop, receiver) as unknown;
              if (typeof value !== 'function' || !['set', 'delete', 'put', 'link', 'record', 'recordRequest'].includes(String(prop))) return value;
              return (...args: unknown[]) => {
                writesOfSecond += 1;
                return (value as (...a: unknown[]) => unknown).apply(target, args);
              };
            },
          });
        const groups = new Map<PropertyKey, object>(['tags', 'manifests', 'blobs', 'promotions'].map((g) => [g, count(Reflect.get(tx, g) as object)]));
        return fn(new Proxy(tx, { get: (target, prop, receiver) => groups.get(prop) ?? (Reflect.get(target, prop, receiver) as unknown) }));
      }) as Promise<T>;
    };
    try {
      const second = promote(request, { requestId });
      // Let the second call get through its look-up and preparation (the tag is still there).
      await new Promise((resolve) => setTimeout(resolve, 100));
      const first = await promote(request, { requestId });
      firstDone();
      expect(await second).toEqual(first);
    } finally {
      Reflect.deleteProperty(store, 'transaction');
    }
    expect(held).toBe(true);
    expect(writesOfSecond).toBe(0);
    expect(await store.tags.resolve('prod', image, '1.0')).toBe(img.digest);
    expect(await history(image)).toEqual({ promotions: 1, audited: 1 });
  });

  it('an id reused for another promotion is a CONFLICT that changes nothing', async () => {
    const image = uniqueImage('reused');
    await pushImage(reg, `dev/${image}`, '1.0');
    await pushImage(reg, `dev/${image}`, '2.0');
    const requestId = randomUUID();
    await promote({ sourceRepo: 'dev', targetRepo: 'prod', dockerRepository: image, tag: '1.0', copy: true }, { requestId });
    await expect(promote({ sourceRepo: 'dev', targetRepo: 'prod', dockerRepository: image, tag: '2.0', copy: true }, { requestId })).rejects.toMatchObject({
      code: 'CONFLICT',
      message: expect.stringContaining('differing in tag, targetTag'),
    });
    expect(await store.tags.list('prod', image)).toEqual(['1.0']);
    // Defaults count as given: targetTag absent is targetTag = tag.
    await expect(
      promote({ sourceRepo: 'dev', targetRepo: 'prod', dockerRepository: image, tag: '1.0', targetTag: '1.0', copy: true }, { requestId }),
    ).resolves.toMatchObject({ digest: expect.any(String) });
    expect(await history(image)).toEqual({ promotions: 1, audited: 1 });
  });

  it('a failed promotion records nothing: after the tag is pushed, the retry under the same id runs', async () => {
    const image = uniqueImage('retry');
    await pushImage(reg, `dev/${image}`, 'other');
    const request = { sourceRepo: 'dev', targetRepo: 'prod', dockerRepository: image, tag: '1.0', copy: false };
    const requestId = randomUUID();
    await expect(promote(request, { requestId })).rejects.toMatchObject({ code: 'MANIFEST_UNKNOWN' });
    expect(await store.promotions.getRequest(requestId)).toBeUndefined();

    const img = await pushImage(reg, `dev/${image}`, '1.0');
    const result = await promote(request, { requestId });
    expect(result).toMatchObject({ digest: img.digest, copy: false });
    expect(await store.promotions.getRequest(requestId)).toMatchObject({ requestId, result });
    expect(await store.tags.resolve('prod', image, '1.0')).toBe(img.digest);
    expect(await history(image)).toEqual({ promotions: 1, audited: 1 });
  });

  it('a failure at the very last write (recording the id) rolls the promotion back with it; the retry runs once', async () => {
    const image = uniqueImage('atomic');
    const img = await pushImage(reg, `dev/${image}`, '1.0');
    const request = { sourceRepo: 'dev', targetRepo: 'prod', dockerRepository: image, tag: '1.0' };
    const requestId = randomUUID();

    // The promotion's transaction, with recordRequest failing as a lost database would.
    const original = store.transaction;
    store.transaction = <T,>(fn: (tx: MetadataStore) => Promise<T>) =>
      original.call(store, (tx) => {
        const promotions = new Proxy(tx.promotions, {
          get: (target, prop, receiver) =>
            prop === 'recordRequest' ? () => Promise.reject(new MetadataUnavailableError('injected')) : (Reflect.get(target, prop, receiver) as unknown),
        });
        return fn(new Proxy(tx, { get: (target, prop, receiver) => (prop === 'promotions' ? promotions : (Reflect.get(target, prop, receiver) as unknown)) }));
      }) as Promise<T>;
    try {
      await expect(promote(request, { requestId })).rejects.toBeInstanceOf(MetadataUnavailableError);
    } finally {
      Reflect.deleteProperty(store, 'transaction');
    }
    expect(await store.tags.resolve('dev', image, '1.0')).toBe(img.digest);
    expect(await store.tags.resolve('prod', image, '1.0')).toBeUndefined();
    expect(await history(image)).toEqual({ promotions: 0, audited: 0 });

    const result = await promote(request, { requestId });
    expect(await promote(request, { requestId })).toEqual(result);
    expect(await store.tags.resolve('prod', image, '1.0')).toBe(img.digest);
    expect(await history(image)).toEqual({ promotions: 1, audited: 1 });
  });

  it('a caller without the rights gets DENIED, not the recorded result; an empty id is refused', async () => {
    const image = uniqueImage('rights');
    await pushImage(reg, `dev/${image}`, '1.0');
    const request = { sourceRepo: 'dev', targetRepo: 'prod', dockerRepository: image, tag: '1.0', copy: true };
    const requestId = randomUUID();
    await promote(request, { requestId });
    await expect(promote(request, { requestId, identity: NOBODY })).rejects.toMatchObject({ code: 'DENIED' });
    await expect(promote(request, { requestId: '' })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(promote(request, { requestId: 'x'.repeat(257) })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    expect(await history(image)).toEqual({ promotions: 1, audited: 1 });
  });
});
