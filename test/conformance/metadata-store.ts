import { createHash, randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { AuditEvent, AuditOutcome, ManifestRecord, ManifestReference, MetadataStore, PromotionRecord } from '../../src/metadata/store.js';

/**
 * The MetadataStore conformance suite: every implementation must pass it.
 *
 * `make` runs before every test and must resolve a store over a migrated,
 * EMPTY database (no rows in any table); `cleanup` runs after every test and
 * releases what `make` acquired (it may leave a shared database open for the
 * next `make`, which then empties it). The suite never calls `store.close()`.
 */
export function describeMetadataStore(
  name: string,
  make: () => Promise<{ store: MetadataStore; cleanup: () => Promise<void> }>,
): void {
  describe(`MetadataStore conformance: ${name}`, () => {
    let store: MetadataStore;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      ({ store, cleanup } = await make());
    });
    afterEach(async () => {
      await cleanup();
    });

    // ---- fixtures ---------------------------------------------------------------

    async function repo(key: string, rclass: 'local' | 'remote' | 'virtual' = 'local'): Promise<void> {
      expect(await store.repositories.create({ key, rclass, config: { description: key } })).toBe(true);
    }

    async function blob(seed: string, size = 10): Promise<string> {
      const digest = digestOf(`blob:${seed}`);
      await store.blobs.put({ digest, size, storageKey: `blobs/${digest}` });
      return digest;
    }

    function manifestOf(
      repoKey: string,
      image: string,
      seed: string,
      extra: Partial<Omit<ManifestRecord, 'createdAt' | 'repoKey' | 'image'>> = {},
    ): Omit<ManifestRecord, 'createdAt'> {
      const content = Buffer.from(JSON.stringify({ schemaVersion: 2, seed }));
      return {
        repoKey,
        image,
        digest: digestOf(content),
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType: null,
        subject: null,
        size: content.length,
        content,
        annotations: null,
        ...extra,
      };
    }

    /** Stores a manifest (no references) and resolves its digest. */
    async function manifest(
      repoKey: string,
      image: string,
      seed: string,
      extra: Partial<Omit<ManifestRecord, 'createdAt' | 'repoKey' | 'image'>> = {},
    ): Promise<string> {
      const m = manifestOf(repoKey, image, seed, extra);
      expect(await store.manifests.put(m, [])).toBe(true);
      return m.digest;
    }

    /** Creates plain users (no password, not admin). */
    async function users(...names: string[]): Promise<void> {
      for (const name of names) await store.users.upsert({ name, passwordHash: null, admin: false });
    }

    /** Creates groups without a description. */
    async function groups(...names: string[]): Promise<void> {
      for (const name of names) await store.groups.upsert({ name });
    }

    function event(extra: Partial<Omit<AuditEvent, 'id' | 'at'>> = {}): Omit<AuditEvent, 'id' | 'at'> {
      return { actor: 'alice', action: 'login', target: null, outcome: 'success', clientIp: null, details: null, ...extra };
    }

    // ---- ping ---------------------------------------------------------------------

    it('ping resolves', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });

    // ---- repositories ---------------------------------------------------------------

    describe('repositories', () => {
      it('creates and gets a repository with its JSON config', async () => {
        const config = { description: 'd', nested: { list: [1, 'two', null], flag: true }, unicode: 'é✓' };
        expect(await store.repositories.create({ key: 'docker-local', rclass: 'local', config })).toBe(true);
        const got = await store.repositories.get('docker-local');
        expect(got).toEqual({
          key: 'docker-local',
          rclass: 'local',
          config,
          managedBy: null,
          createdAt: expect.any(Date),
          updatedAt: expect.any(Date),
        });
      });

      it('get resolves undefined for an unknown key', async () => {
        expect(await store.repositories.get('nope')).toBeUndefined();
      });

      it('create resolves false and changes nothing when the key exists', async () => {
        await store.repositories.create({ key: 'r', rclass: 'local', config: { v: 1 } });
        expect(await store.repositories.create({ key: 'r', rclass: 'remote', config: { v: 2 }, managedBy: 'ns/x' })).toBe(false);
        expect(await store.repositories.get('r')).toMatchObject({ rclass: 'local', config: { v: 1 }, managedBy: null });
      });

      it('stores managedBy', async () => {
        await store.repositories.create({ key: 'r', rclass: 'remote', config: {}, managedBy: 'team-a/hub' });
        expect((await store.repositories.get('r'))?.managedBy).toBe('team-a/hub');
      });

      it('lists in byte-wise lexical order, optionally of one class', async () => {
        for (const key of ['a', 'B', 'a-b', 'a/b', 'ab']) await repo(key, key === 'a-b' || key === 'B' ? 'remote' : 'local');
        expect((await store.repositories.list()).map((r) => r.key)).toEqual(['B', 'a', 'a-b', 'a/b', 'ab']);
        expect((await store.repositories.list('remote')).map((r) => r.key)).toEqual(['B', 'a-b']);
        expect(await store.repositories.list('virtual')).toEqual([]);
      });

      it('update replaces class, config and managedBy and moves updatedAt', async () => {
        await store.repositories.create({ key: 'r', rclass: 'local', config: { a: 1, b: 2 }, managedBy: 'ns/r' });
        const before = (await store.repositories.get('r'))!;
        await sleep(5);
        expect(await store.repositories.update({ key: 'r', rclass: 'virtual', config: { c: 3 } })).toBe(true);
        const after = (await store.repositories.get('r'))!;
        expect(after).toMatchObject({ rclass: 'virtual', config: { c: 3 }, managedBy: null });
        expect(after.createdAt).toEqual(before.createdAt);
        expect(after.updatedAt.getTime()).toBeGreaterThan(before.updatedAt.getTime());
      });

      it('update resolves false for an unknown key', async () => {
        expect(await store.repositories.update({ key: 'nope', rclass: 'local', config: {} })).toBe(false);
        expect(await store.repositories.get('nope')).toBeUndefined();
      });

      it('delete resolves true once, then false', async () => {
        await repo('r');
        expect(await store.repositories.delete('r')).toBe(true);
        expect(await store.repositories.get('r')).toBeUndefined();
        expect(await store.repositories.delete('r')).toBe(false);
      });

      it('delete cascades to links, manifests, references, tags and uploads but keeps blobs', async () => {
        await repo('r');
        await repo('other');
        const layer = await blob('layer');
        await store.blobs.link('r', 'img', layer);
        await store.blobs.link('other', 'img', layer);
        const m = manifestOf('r', 'img', 'm');
        await store.manifests.put(m, [{ digest: layer, kind: 'blob' }]);
        await store.tags.set('r', 'img', 'latest', m.digest);
        const upload = await store.uploads.create({ id: randomUUID(), repoKey: 'r', image: 'img', driverState: {} });

        expect(await store.repositories.delete('r')).toBe(true);

        expect(await store.blobs.getLinked('r', 'img', layer)).toBeUndefined();
        expect(await store.manifests.get('r', 'img', m.digest)).toBeUndefined();
        expect(await store.manifests.references('r', 'img', m.digest)).toEqual([]);
        expect(await store.tags.resolve('r', 'img', 'latest')).toBeUndefined();
        expect(await store.uploads.get(upload.id)).toBeUndefined();
        expect(await store.manifests.imageExists('r', 'img')).toBe(false);
        // The blob row stays for GC, and other repositories keep their links.
        expect(await store.blobs.get(layer)).toBeDefined();
        expect(await store.blobs.getLinked('other', 'img', layer)).toBeDefined();
      });
    });

    // ---- blobs ----------------------------------------------------------------------

    describe('blobs', () => {
      it('put inserts and resolves the record; get finds it', async () => {
        const digest = digestOf('x');
        const put = await store.blobs.put({ digest, size: 42, storageKey: 'blobs/x' });
        expect(put).toEqual({ digest, size: 42, storageKey: 'blobs/x', createdAt: expect.any(Date) });
        expect(await store.blobs.get(digest)).toEqual(put);
      });

      it('put of an existing digest keeps and resolves the existing record', async () => {
        const digest = digestOf('x');
        const first = await store.blobs.put({ digest, size: 42, storageKey: 'blobs/first' });
        const second = await store.blobs.put({ digest, size: 42, storageKey: 'blobs/second' });
        expect(second).toEqual(first);
        expect((await store.blobs.get(digest))?.storageKey).toBe('blobs/first');
      });

      it('concurrent puts of one digest all resolve the same record', async () => {
        const digest = digestOf('race');
        const results = await Promise.all(
          [1, 2, 3, 4].map((n) => store.blobs.put({ digest, size: 7, storageKey: `blobs/${n}` })),
        );
        for (const r of results) expect(r).toEqual(results[0]);
      });

      it('get resolves undefined for an unknown digest', async () => {
        expect(await store.blobs.get(digestOf('nope'))).toBeUndefined();
      });

      it('sizes past 2^32 come back as exact JS numbers', async () => {
        for (const size of [0, 2 ** 32 + 1, 6 * 2 ** 30 + 7, Number.MAX_SAFE_INTEGER]) {
          const digest = digestOf(`size:${size}`);
          await store.blobs.put({ digest, size, storageKey: 'k' });
          const got = await store.blobs.get(digest);
          expect(got?.size).toBe(size);
          expect(typeof got?.size).toBe('number');
        }
      });

      it('link makes a blob visible in exactly that image of that repository; idempotent', async () => {
        await repo('r');
        const digest = await blob('a', 5);
        await store.blobs.link('r', 'img', digest);
        await store.blobs.link('r', 'img', digest);
        expect(await store.blobs.getLinked('r', 'img', digest)).toMatchObject({ digest, size: 5 });
        expect(await store.blobs.getLinked('r', 'other', digest)).toBeUndefined();
        expect(await store.blobs.getLinked('r', 'img', digestOf('unknown'))).toBeUndefined();
      });

      it('link rejects for a blob that was never put', async () => {
        await repo('r');
        await expect(store.blobs.link('r', 'img', digestOf('never'))).rejects.toThrow();
      });

      it('unlink removes the link once (then false) and keeps the blob row', async () => {
        await repo('r');
        const digest = await blob('a');
        await store.blobs.link('r', 'img', digest);
        expect(await store.blobs.unlink('r', 'img', digest)).toBe(true);
        expect(await store.blobs.unlink('r', 'img', digest)).toBe(false);
        expect(await store.blobs.getLinked('r', 'img', digest)).toBeUndefined();
        expect(await store.blobs.get(digest)).toBeDefined();
      });

      it('missing keeps input order and names each missing digest once', async () => {
        await repo('r');
        const [a, b, c, d] = await Promise.all(['a', 'b', 'c', 'd'].map((s) => blob(s)));
        await store.blobs.link('r', 'img', b!);
        await store.blobs.link('r', 'other', c!);
        const unknown = digestOf('unknown');
        expect(await store.blobs.missing('r', 'img', [d!, b!, unknown, a!, d!, c!, unknown])).toEqual([d, unknown, a, c]);
        expect(await store.blobs.missing('r', 'img', [b!])).toEqual([]);
        expect(await store.blobs.missing('r', 'img', [])).toEqual([]);
      });
    });

    // ---- manifests ------------------------------------------------------------------

    describe('manifests', () => {
      beforeEach(async () => {
        await repo('r');
      });

      it('put then get round-trips every field and the exact bytes', async () => {
        // Every byte value, NUL, and sequences that are not valid UTF-8.
        const content = Buffer.concat([
          Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
          Buffer.from([0x00, 0x00, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0, 0x28, 0x8c, 0xbc, 0xff, 0xfe]),
        ]);
        const m: Omit<ManifestRecord, 'createdAt'> = {
          repoKey: 'r',
          image: 'team/app',
          digest: digestOf(content),
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          artifactType: 'application/vnd.example+type',
          subject: digestOf('subject'),
          size: content.length,
          content,
          annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z', 'x.unicode': 'ü✓' },
        };
        expect(await store.manifests.put(m, [])).toBe(true);
        const got = await store.manifests.get('r', 'team/app', m.digest);
        expect(got).toEqual({ ...m, createdAt: expect.any(Date) });
        expect(Buffer.isBuffer(got!.content)).toBe(true);
        expect(got!.content.equals(content)).toBe(true);
      });

      it('get resolves undefined for an unknown digest, another image or another repository', async () => {
        await repo('r2');
        const digest = await manifest('r', 'img', 'm');
        expect(await store.manifests.get('r', 'img', digestOf('nope'))).toBeUndefined();
        expect(await store.manifests.get('r', 'other', digest)).toBeUndefined();
        expect(await store.manifests.get('r2', 'img', digest)).toBeUndefined();
      });

      it('put of an existing digest resolves false and keeps the stored row and references', async () => {
        const layer = await blob('layer');
        const m = manifestOf('r', 'img', 'm');
        expect(await store.manifests.put(m, [{ digest: layer, kind: 'blob' }])).toBe(true);
        expect(await store.manifests.put({ ...m, mediaType: 'application/other', annotations: { a: 'b' } }, [])).toBe(false);
        expect(await store.manifests.get('r', 'img', m.digest)).toMatchObject({ mediaType: m.mediaType, annotations: null });
        expect(await store.manifests.references('r', 'img', m.digest)).toEqual([{ digest: layer, kind: 'blob' }]);
      });

      it('references resolves what the manifest was put with (by digest; duplicates once)', async () => {
        const config = digestOf('config');
        const layer = digestOf('layer');
        const child = digestOf('child');
        const refs: ManifestReference[] = [
          { digest: layer, kind: 'blob' },
          { digest: config, kind: 'blob' },
          { digest: child, kind: 'manifest' },
          { digest: layer, kind: 'blob' },
        ];
        const m = manifestOf('r', 'img', 'idx');
        await store.manifests.put(m, refs);
        const got = await store.manifests.references('r', 'img', m.digest);
        expect(got).toEqual(
          [
            { digest: config, kind: 'blob' },
            { digest: layer, kind: 'blob' },
            { digest: child, kind: 'manifest' },
          ].sort((x, y) => cmp(x.digest, y.digest)),
        );
        expect(await store.manifests.references('r', 'img', digestOf('nope'))).toEqual([]);
      });

      it('notify reaches subscribers; a rolled-back transaction notifies nobody', async () => {
        const got: string[] = [];
        const stop = await store.subscribe('drydock_test_channel', (p) => got.push(p));
        try {
          await store.transaction(async (tx) => {
            await tx.notify('drydock_test_channel', 'rolled back');
            throw new Error('abort');
          }).catch(() => undefined);
          await store.transaction((tx) => tx.notify('drydock_test_channel', 'committed'));
          await store.notify('drydock_test_channel', 'direct');
          const deadline = Date.now() + 3000;
          while (got.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
          expect(got).toEqual(['committed', 'direct']);
        } finally {
          await stop();
        }
      });

      it('leases: one owner at a time, free again when released or expired', async () => {
        expect(await store.leases.acquire('fill:x', 'pod-a', 60_000)).toBe(true);
        expect(await store.leases.acquire('fill:x', 'pod-b', 60_000)).toBe(false);
        expect(await store.leases.acquire('fill:x', 'pod-a', 60_000)).toBe(true);
        await store.leases.release('fill:x', 'pod-b');
        expect(await store.leases.acquire('fill:x', 'pod-b', 60_000)).toBe(false);
        await store.leases.release('fill:x', 'pod-a');
        expect(await store.leases.acquire('fill:x', 'pod-b', 1)).toBe(true);
        await new Promise((r) => setTimeout(r, 20));
        expect(await store.leases.acquire('fill:x', 'pod-a', 60_000)).toBe(true);
        const racers = await Promise.all(['p1', 'p2', 'p3', 'p4'].map((o) => store.leases.acquire('fill:y', o, 60_000)));
        expect(racers.filter(Boolean)).toHaveLength(1);
      });

      it('imageStats counts tags, manifests and bytes per image', async () => {
        await store.repositories.create({ key: 'stats', rclass: 'local', config: {} });
        const layer = await store.blobs.put({ digest: digestOf('stats-layer'), size: 1000, storageKey: 'k1' });
        await store.blobs.link('stats', 'app', layer.digest);
        const m1 = { ...manifestOf('stats', 'app', 'stats-1'), size: 10 };
        const m2 = { ...manifestOf('stats', 'app', 'stats-2'), size: 20 };
        await store.manifests.put(m1, [{ digest: layer.digest, kind: 'blob' }]);
        await store.manifests.put(m2, []);
        await store.tags.set('stats', 'app', 'a', m1.digest);
        await store.tags.set('stats', 'app', 'b', m1.digest);
        await store.manifests.put({ ...manifestOf('stats', 'tool', 'stats-3'), size: 5 }, []);
        expect(await store.manifests.imageStats('stats')).toEqual([
          { image: 'app', tags: 2, manifests: 2, size: 1030 },
          { image: 'tool', tags: 0, manifests: 1, size: 5 },
        ]);
        expect(await store.manifests.imageStats('nothing-here')).toEqual([]);
      });

      it('imageCounts counts images with a manifest per repository, for some keys or all', async () => {
        await store.repositories.create({ key: 'count-a', rclass: 'local', config: {} });
        await store.repositories.create({ key: 'count-b', rclass: 'local', config: {} });
        await store.manifests.put(manifestOf('count-a', 'app', 'count-1'), []);
        await store.manifests.put(manifestOf('count-a', 'app', 'count-2'), []);
        await store.manifests.put(manifestOf('count-a', 'tool', 'count-3'), []);
        await store.manifests.put(manifestOf('count-b', 'web', 'count-4'), []);
        expect(await store.manifests.imageCounts(['count-a', 'count-b', 'count-empty'])).toEqual(
          new Map([
            ['count-a', 2],
            ['count-b', 1],
          ]),
        );
        expect(await store.manifests.imageCounts(['count-b'])).toEqual(new Map([['count-b', 1]]));
        expect(await store.manifests.imageCounts([])).toEqual(new Map());
        const all = await store.manifests.imageCounts();
        expect(all.get('count-a')).toBe(2);
        expect(all.get('count-b')).toBe(1);
      });

      it('referencing finds the manifests of one image that reference a digest', async () => {
        const layer = digestOf('shared-layer');
        const a = manifestOf('r', 'img', 'ref-a');
        const b = manifestOf('r', 'img', 'ref-b');
        const elsewhere = manifestOf('r', 'other', 'ref-c');
        await store.manifests.put(a, [{ digest: layer, kind: 'blob' }]);
        await store.manifests.put(b, [{ digest: layer, kind: 'blob' }]);
        await store.manifests.put(elsewhere, [{ digest: layer, kind: 'blob' }]);
        expect(await store.manifests.referencing('r', 'img', layer)).toEqual([a.digest, b.digest].sort(cmp));
        expect(await store.manifests.referencing('r', 'img', digestOf('none'))).toEqual([]);
      });

      it('delete removes the manifest, its references and the tags pointing at it', async () => {
        const layer = digestOf('layer');
        const m = manifestOf('r', 'img', 'm');
        await store.manifests.put(m, [{ digest: layer, kind: 'blob' }]);
        const keep = await manifest('r', 'img', 'keep');
        await store.tags.set('r', 'img', 'v1', m.digest);
        await store.tags.set('r', 'img', 'latest', m.digest);
        await store.tags.set('r', 'img', 'stable', keep);

        expect(await store.manifests.delete('r', 'img', m.digest)).toBe(true);

        expect(await store.manifests.get('r', 'img', m.digest)).toBeUndefined();
        expect(await store.manifests.references('r', 'img', m.digest)).toEqual([]);
        expect(await store.tags.resolve('r', 'img', 'v1')).toBeUndefined();
        expect(await store.tags.list('r', 'img')).toEqual(['stable']);
        expect(await store.manifests.delete('r', 'img', m.digest)).toBe(false);
        // The same bytes can be pushed again afterwards.
        expect(await store.manifests.put(m, [])).toBe(true);
      });

      it('missing keeps input order and names each missing digest once', async () => {
        const a = await manifest('r', 'img', 'a');
        const elsewhere = await manifest('r', 'other', 'b');
        const unknown = digestOf('unknown');
        expect(await store.manifests.missing('r', 'img', [unknown, a, elsewhere, unknown])).toEqual([unknown, elsewhere]);
        expect(await store.manifests.missing('r', 'img', [a])).toEqual([]);
        expect(await store.manifests.missing('r', 'img', [])).toEqual([]);
      });

      it('referrers lists manifests with that subject by digest, with and without an artifactType filter', async () => {
        const subject = await manifest('r', 'img', 'subject');
        const sig1 = await manifest('r', 'img', 'sig1', { subject, artifactType: 'application/vnd.example.sig' });
        const sig2 = await manifest('r', 'img', 'sig2', { subject, artifactType: 'application/vnd.example.sig' });
        const sbom = await manifest('r', 'img', 'sbom', {
          subject,
          artifactType: 'application/vnd.example.sbom',
          annotations: { 'org.example.kind': 'sbom' },
        });
        const plain = await manifest('r', 'img', 'plain', { subject });
        await manifest('r', 'img', 'unrelated', { subject: digestOf('other-subject'), artifactType: 'application/vnd.example.sig' });
        await manifest('r', 'other-image', 'sig-elsewhere', { subject, artifactType: 'application/vnd.example.sig' });

        const all = await store.manifests.referrers('r', 'img', subject);
        expect(all.map((m) => m.digest)).toEqual([sig1, sig2, sbom, plain].sort(cmp));
        for (const s of all) expect(s).not.toHaveProperty('content');
        expect(all.find((m) => m.digest === sbom)).toEqual({
          repoKey: 'r',
          image: 'img',
          digest: sbom,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          artifactType: 'application/vnd.example.sbom',
          subject,
          size: expect.any(Number),
          annotations: { 'org.example.kind': 'sbom' },
          createdAt: expect.any(Date),
        });

        const sigs = await store.manifests.referrers('r', 'img', subject, 'application/vnd.example.sig');
        expect(sigs.map((m) => m.digest)).toEqual([sig1, sig2].sort(cmp));
        expect(await store.manifests.referrers('r', 'img', subject, 'application/none')).toEqual([]);
        expect(await store.manifests.referrers('r', 'img', digestOf('no-such-subject'))).toEqual([]);
      });

      it('imageExists is true while the image holds a manifest', async () => {
        expect(await store.manifests.imageExists('r', 'img')).toBe(false);
        const digest = await manifest('r', 'img', 'm');
        expect(await store.manifests.imageExists('r', 'img')).toBe(true);
        expect(await store.manifests.imageExists('r', 'im')).toBe(false);
        await store.manifests.delete('r', 'img', digest);
        expect(await store.manifests.imageExists('r', 'img')).toBe(false);
      });

      describe('catalog', () => {
        // Ordered by the joined `repo/image`, which is not the order of (repo, image):
        // 'a-b/z' sorts before 'a/B' because '-' (0x2d) < '/' (0x2f).
        const ORDERED = ['B/img', 'a-b/z', 'a/B', 'a/x', 'a/x/y'];

        beforeEach(async () => {
          for (const key of ['a', 'a-b', 'B', 'empty']) await repo(key);
          for (const joined of ['a/x/y', 'B/img', 'a/x', 'a-b/z', 'a/B']) {
            const [key, ...rest] = joined.split('/');
            // Two manifests in one image still list the image once.
            await manifest(key!, rest.join('/'), `${joined}#1`);
            await manifest(key!, rest.join('/'), `${joined}#2`);
          }
          // Blobs alone do not make an image appear.
          await store.blobs.link('empty', 'only-blobs', await blob('b'));
        });

        const joined = (rows: Array<{ repoKey: string; image: string }>) => rows.map((r) => `${r.repoKey}/${r.image}`);

        it('lists every image once in byte-wise order of repoKey/image', async () => {
          expect(joined(await store.manifests.catalog({}))).toEqual(ORDERED);
        });

        it('paginates with last and limit', async () => {
          const pages: string[][] = [];
          let last: string | undefined;
          for (;;) {
            const page = joined(await store.manifests.catalog({ last, limit: 2 }));
            if (page.length === 0) break;
            pages.push(page);
            last = page[page.length - 1];
          }
          expect(pages).toEqual([ORDERED.slice(0, 2), ORDERED.slice(2, 4), ORDERED.slice(4)]);
          expect(await store.manifests.catalog({ limit: 0 })).toEqual([]);
          // `last` need not name an existing image.
          expect(joined(await store.manifests.catalog({ last: 'a/' }))).toEqual(['a/B', 'a/x', 'a/x/y']);
          expect(joined(await store.manifests.catalog({ last: 'a/x', limit: 5 }))).toEqual(['a/x/y']);
          expect(await store.manifests.catalog({ last: 'a/x/y' })).toEqual([]);
        });

        it('filters by repoKeys', async () => {
          expect(await store.manifests.catalog({ repoKeys: ['a'] })).toEqual([
            { repoKey: 'a', image: 'B' },
            { repoKey: 'a', image: 'x' },
            { repoKey: 'a', image: 'x/y' },
          ]);
          expect(joined(await store.manifests.catalog({ repoKeys: ['a', 'B'], last: 'B/img', limit: 2 }))).toEqual([
            'a/B',
            'a/x',
          ]);
          expect(await store.manifests.catalog({ repoKeys: ['empty', 'unknown'] })).toEqual([]);
          expect(await store.manifests.catalog({ repoKeys: [] })).toEqual([]);
        });
      });
    });

    // ---- tags -----------------------------------------------------------------------

    describe('tags', () => {
      let m1: string;
      let m2: string;

      beforeEach(async () => {
        await repo('r');
        m1 = await manifest('r', 'img', 'm1');
        m2 = await manifest('r', 'img', 'm2');
      });

      it('set creates a tag (no previous) that resolve finds', async () => {
        const result = await store.tags.set('r', 'img', 'latest', m1);
        expect(result.previous).toBeUndefined();
        expect(await store.tags.resolve('r', 'img', 'latest')).toBe(m1);
        expect(await store.tags.resolve('r', 'img', 'other')).toBeUndefined();
        expect(await store.tags.resolve('r', 'other-image', 'latest')).toBeUndefined();
      });

      it('set re-points a tag, resolves the previous digest and moves updatedAt only', async () => {
        await store.tags.set('r', 'img', 'latest', m1);
        const [before] = await store.tags.records('r', 'img');
        await sleep(5);
        expect(await store.tags.set('r', 'img', 'latest', m2)).toEqual({ previous: m1 });
        expect(await store.tags.resolve('r', 'img', 'latest')).toBe(m2);
        const [after] = await store.tags.records('r', 'img');
        expect(after!.createdAt).toEqual(before!.createdAt);
        expect(after!.updatedAt.getTime()).toBeGreaterThan(before!.updatedAt.getTime());
        expect(await store.tags.set('r', 'img', 'latest', m2)).toEqual({ previous: m2 });
      });

      it('set rejects for a manifest not stored in that image', async () => {
        await expect(store.tags.set('r', 'img', 'latest', digestOf('nope'))).rejects.toThrow();
        await expect(store.tags.set('r', 'other-image', 'latest', m1)).rejects.toThrow();
        expect(await store.tags.resolve('r', 'img', 'latest')).toBeUndefined();
      });

      it('delete resolves true once, then false', async () => {
        await store.tags.set('r', 'img', 'latest', m1);
        expect(await store.tags.delete('r', 'img', 'latest')).toBe(true);
        expect(await store.tags.resolve('r', 'img', 'latest')).toBeUndefined();
        expect(await store.tags.delete('r', 'img', 'latest')).toBe(false);
        // The manifest stays.
        expect(await store.manifests.get('r', 'img', m1)).toBeDefined();
      });

      it('list is in byte-wise lexical order and paginates with last and limit', async () => {
        for (const tag of ['a', 'B', 'a-b', 'a/b', 'ab']) await store.tags.set('r', 'img', tag, m1);
        await manifest('r', 'other', 'o');
        expect(await store.tags.list('r', 'img')).toEqual(['B', 'a', 'a-b', 'a/b', 'ab']);
        expect(await store.tags.list('r', 'img', { limit: 2 })).toEqual(['B', 'a']);
        expect(await store.tags.list('r', 'img', { last: 'a', limit: 2 })).toEqual(['a-b', 'a/b']);
        expect(await store.tags.list('r', 'img', { last: 'a/b' })).toEqual(['ab']);
        expect(await store.tags.list('r', 'img', { last: 'ab' })).toEqual([]);
        // `last` need not be an existing tag.
        expect(await store.tags.list('r', 'img', { last: 'a.' })).toEqual(['a/b', 'ab']);
        expect(await store.tags.list('r', 'img', { limit: 0 })).toEqual([]);
        expect(await store.tags.list('r', 'other')).toEqual([]);
      });

      it('records lists full records, most recently updated first', async () => {
        await store.tags.set('r', 'img', 'one', m1);
        await sleep(5);
        await store.tags.set('r', 'img', 'two', m2);
        await sleep(5);
        await store.tags.set('r', 'img', 'three', m1);
        await sleep(5);
        await store.tags.set('r', 'img', 'one', m2);
        const records = await store.tags.records('r', 'img');
        expect(records.map((t) => t.name)).toEqual(['one', 'three', 'two']);
        expect(records[0]).toEqual({
          repoKey: 'r',
          image: 'img',
          name: 'one',
          digest: m2,
          createdAt: expect.any(Date),
          updatedAt: expect.any(Date),
        });
        expect(await store.tags.records('r', 'other')).toEqual([]);
      });

      it('forDigest lists the tags pointing at a digest in lexical order', async () => {
        for (const tag of ['b', 'A', 'a']) await store.tags.set('r', 'img', tag, m1);
        await store.tags.set('r', 'img', 'z', m2);
        expect(await store.tags.forDigest('r', 'img', m1)).toEqual(['A', 'a', 'b']);
        expect(await store.tags.forDigest('r', 'img', m2)).toEqual(['z']);
        expect(await store.tags.forDigest('r', 'img', digestOf('nope'))).toEqual([]);
      });
    });

    // ---- uploads --------------------------------------------------------------------

    describe('uploads', () => {
      beforeEach(async () => {
        await repo('r');
      });

      it('create resolves a session at size 0 that get finds', async () => {
        const id = randomUUID();
        const created = await store.uploads.create({ id, repoKey: 'r', image: 'team/img', driverState: { path: 'uploads/x', parts: [] } });
        expect(created).toEqual({
          id,
          repoKey: 'r',
          image: 'team/img',
          size: 0,
          driverState: { path: 'uploads/x', parts: [] },
          createdAt: expect.any(Date),
          updatedAt: expect.any(Date),
        });
        expect(await store.uploads.get(id)).toEqual(created);
      });

      it('get resolves undefined for unknown and malformed ids', async () => {
        expect(await store.uploads.get(randomUUID())).toBeUndefined();
        expect(await store.uploads.get('not-a-uuid')).toBeUndefined();
      });

      it('advance is a compare-and-set on the size', async () => {
        const { id } = await store.uploads.create({ id: randomUUID(), repoKey: 'r', image: 'img', driverState: { n: 0 } });
        expect(await store.uploads.advance(id, 0, 100, { n: 1 })).toBe(true);
        expect(await store.uploads.get(id)).toMatchObject({ size: 100, driverState: { n: 1 } });

        // A stale expected size changes nothing.
        expect(await store.uploads.advance(id, 0, 200, { n: 2 })).toBe(false);
        expect(await store.uploads.get(id)).toMatchObject({ size: 100, driverState: { n: 1 } });

        expect(await store.uploads.advance(id, 100, 6 * 2 ** 30, { n: 3 })).toBe(true);
        expect(await store.uploads.get(id)).toMatchObject({ size: 6 * 2 ** 30, driverState: { n: 3 } });
      });

      it('of two concurrent advances from the same size exactly one wins', async () => {
        const { id } = await store.uploads.create({ id: randomUUID(), repoKey: 'r', image: 'img', driverState: {} });
        const results = await Promise.all([
          store.uploads.advance(id, 0, 10, { by: 'a' }),
          store.uploads.advance(id, 0, 20, { by: 'b' }),
        ]);
        expect(results.filter(Boolean)).toHaveLength(1);
        const winner = results[0] ? { size: 10, driverState: { by: 'a' } } : { size: 20, driverState: { by: 'b' } };
        expect(await store.uploads.get(id)).toMatchObject(winner);
      });

      it('advance moves updatedAt and resolves false for a missing session', async () => {
        const created = await store.uploads.create({ id: randomUUID(), repoKey: 'r', image: 'img', driverState: {} });
        await sleep(5);
        await store.uploads.advance(created.id, 0, 1, {});
        const after = (await store.uploads.get(created.id))!;
        expect(after.createdAt).toEqual(created.createdAt);
        expect(after.updatedAt.getTime()).toBeGreaterThan(created.updatedAt.getTime());
        expect(await store.uploads.advance(randomUUID(), 0, 1, {})).toBe(false);
      });

      it('delete resolves true once, then false; a deleted session cannot advance', async () => {
        const { id } = await store.uploads.create({ id: randomUUID(), repoKey: 'r', image: 'img', driverState: {} });
        expect(await store.uploads.delete(id)).toBe(true);
        expect(await store.uploads.get(id)).toBeUndefined();
        expect(await store.uploads.delete(id)).toBe(false);
        expect(await store.uploads.advance(id, 0, 1, {})).toBe(false);
      });

      it('stale lists sessions untouched since `before`, oldest first, at most `limit`', async () => {
        const ids: string[] = [];
        for (let i = 0; i < 3; i++) {
          ids.push((await store.uploads.create({ id: randomUUID(), repoKey: 'r', image: 'img', driverState: { i } })).id);
          await sleep(5);
        }
        // Touching the oldest makes it the newest.
        await store.uploads.advance(ids[0]!, 0, 1, { i: 0 });
        await sleep(5);
        const now = new Date();
        expect((await store.uploads.stale(now, 10)).map((u) => u.id)).toEqual([ids[1], ids[2], ids[0]]);
        expect((await store.uploads.stale(now, 2)).map((u) => u.id)).toEqual([ids[1], ids[2]]);
        const first = (await store.uploads.get(ids[1]!))!;
        expect(await store.uploads.stale(first.updatedAt, 10)).toEqual([]);
        expect((await store.uploads.stale(new Date(first.updatedAt.getTime() + 1), 10))[0]).toEqual(first);
      });
    });

    // ---- users ----------------------------------------------------------------------

    describe('users', () => {
      it('upsert creates a user that get finds', async () => {
        await store.users.upsert({ name: 'admin', passwordHash: 'hash', admin: true });
        expect(await store.users.get('admin')).toEqual({
          name: 'admin',
          passwordHash: 'hash',
          email: null,
          admin: true,
          createdAt: expect.any(Date),
          updatedAt: expect.any(Date),
        });
        expect(await store.users.get('nobody')).toBeUndefined();
      });

      it('upsert replaces the fields of an existing user; an omitted email is kept, null clears it', async () => {
        await store.users.upsert({ name: 'u', passwordHash: 'h1', email: 'u@example.com', admin: true });
        const before = (await store.users.get('u'))!;
        await sleep(5);
        await store.users.upsert({ name: 'u', passwordHash: null, admin: false });
        const after = (await store.users.get('u'))!;
        expect(after).toMatchObject({ passwordHash: null, email: 'u@example.com', admin: false });
        expect(after.createdAt).toEqual(before.createdAt);
        expect(after.updatedAt.getTime()).toBeGreaterThan(before.updatedAt.getTime());
        await store.users.upsert({ name: 'u', passwordHash: 'h2', email: null, admin: false });
        expect(await store.users.get('u')).toMatchObject({ passwordHash: 'h2', email: null });
      });

      it('list is in byte-wise lexical order', async () => {
        for (const name of ['a', 'B', 'a-b', 'a/b', 'ab']) await store.users.upsert({ name, passwordHash: null, admin: false });
        expect((await store.users.list()).map((u) => u.name)).toEqual(['B', 'a', 'a-b', 'a/b', 'ab']);
      });

      it('delete resolves true once, then false', async () => {
        await store.users.upsert({ name: 'u', passwordHash: null, admin: false });
        expect(await store.users.delete('u')).toBe(true);
        expect(await store.users.get('u')).toBeUndefined();
        expect(await store.users.delete('u')).toBe(false);
      });
    });

    // ---- settings -------------------------------------------------------------------

    describe('settings', () => {
      it('get resolves undefined when unset and any JSON value once set', async () => {
        expect(await store.settings.get('missing')).toBeUndefined();
        const values: unknown[] = ['text', 42, 1.5, true, false, null, [1, 'a', { b: null }], { nested: { deep: ['x'] } }];
        for (const [i, value] of values.entries()) {
          await store.settings.set(`k${i}`, value);
          expect(await store.settings.get(`k${i}`)).toEqual(value);
        }
      });

      it('set overwrites', async () => {
        await store.settings.set('k', { v: 1 });
        await store.settings.set('k', 'two');
        expect(await store.settings.get('k')).toBe('two');
      });

      it('setIfAbsent stores when unset and otherwise resolves the stored value', async () => {
        expect(await store.settings.setIfAbsent('secret', 'first')).toBe('first');
        expect(await store.settings.setIfAbsent('secret', 'second')).toBe('first');
        expect(await store.settings.get('secret')).toBe('first');
        await store.settings.set('flag', false);
        expect(await store.settings.setIfAbsent('flag', true)).toBe(false);
      });

      it('concurrent setIfAbsent calls all resolve the one stored value', async () => {
        const results = await Promise.all(['a', 'b', 'c', 'd'].map((v) => store.settings.setIfAbsent('jwt-key', { v })));
        const stored = await store.settings.get('jwt-key');
        expect(['a', 'b', 'c', 'd'].map((v) => ({ v }))).toContainEqual(stored);
        for (const r of results) expect(r).toEqual(stored);
      });
    });

    // ---- groups ---------------------------------------------------------------------

    describe('groups', () => {
      it('upsert creates a group that get finds; get resolves undefined for an unknown name', async () => {
        await store.groups.upsert({ name: 'devs', description: 'Developers ✓' });
        await store.groups.upsert({ name: 'ops' });
        expect(await store.groups.get('devs')).toEqual({
          name: 'devs',
          description: 'Developers ✓',
          createdAt: expect.any(Date),
          updatedAt: expect.any(Date),
        });
        expect((await store.groups.get('ops'))?.description).toBeNull();
        expect(await store.groups.get('nope')).toBeUndefined();
      });

      it('upsert replaces the description and moves updatedAt; an omitted description is kept, null clears it', async () => {
        await store.groups.upsert({ name: 'g', description: 'one' });
        const before = (await store.groups.get('g'))!;
        await sleep(5);
        await store.groups.upsert({ name: 'g', description: 'two' });
        const after = (await store.groups.get('g'))!;
        expect(after.description).toBe('two');
        expect(after.createdAt).toEqual(before.createdAt);
        expect(after.updatedAt.getTime()).toBeGreaterThan(before.updatedAt.getTime());
        await store.groups.upsert({ name: 'g' });
        expect((await store.groups.get('g'))?.description).toBe('two');
        await store.groups.upsert({ name: 'g', description: null });
        expect((await store.groups.get('g'))?.description).toBeNull();
      });

      it('list is in byte-wise lexical order', async () => {
        expect(await store.groups.list()).toEqual([]);
        await groups('a', 'B', 'a-b', 'a/b', 'ab');
        const listed = await store.groups.list();
        expect(listed.map((g) => g.name)).toEqual(['B', 'a', 'a-b', 'a/b', 'ab']);
        expect(listed[0]).toEqual(await store.groups.get('B'));
      });

      it('setMembers replaces the members (duplicates once); members lists them in byte-wise order', async () => {
        await users('a', 'B', 'a-b', 'a/b', 'ab', 'c');
        await groups('g', 'other');
        await store.groups.setMembers('other', ['a', 'c']);

        await store.groups.setMembers('g', ['ab', 'a/b', 'B', 'a', 'a-b']);
        expect(await store.groups.members('g')).toEqual(['B', 'a', 'a-b', 'a/b', 'ab']);
        await store.groups.setMembers('g', ['c', 'a', 'c']);
        expect(await store.groups.members('g')).toEqual(['a', 'c']);
        await store.groups.setMembers('g', []);
        expect(await store.groups.members('g')).toEqual([]);

        // Another group's memberships are untouched.
        expect(await store.groups.members('other')).toEqual(['a', 'c']);
        expect(await store.groups.members('nope')).toEqual([]);
      });

      it("setUserGroups replaces the user's memberships; ofUser lists them in byte-wise order", async () => {
        await users('u', 'v');
        await groups('a', 'B', 'a-b', 'ab');
        await store.groups.setMembers('ab', ['v']);

        await store.groups.setUserGroups('u', ['ab', 'B', 'ab', 'a']);
        expect(await store.groups.ofUser('u')).toEqual(['B', 'a', 'ab']);
        // Both sides read the same memberships.
        expect(await store.groups.members('ab')).toEqual(['u', 'v']);
        expect(await store.groups.members('B')).toEqual(['u']);

        await store.groups.setUserGroups('u', ['a-b']);
        expect(await store.groups.ofUser('u')).toEqual(['a-b']);
        expect(await store.groups.members('ab')).toEqual(['v']);
        expect(await store.groups.members('a-b')).toEqual(['u']);

        await store.groups.setUserGroups('u', []);
        expect(await store.groups.ofUser('u')).toEqual([]);
        // Another user's memberships are untouched.
        expect(await store.groups.ofUser('v')).toEqual(['ab']);
        expect(await store.groups.ofUser('nobody')).toEqual([]);
      });

      it('delete removes the group and its memberships but not the users; then false', async () => {
        await users('u', 'v');
        await groups('g', 'h');
        await store.groups.setMembers('g', ['u', 'v']);
        await store.groups.setMembers('h', ['u']);

        expect(await store.groups.delete('g')).toBe(true);
        expect(await store.groups.get('g')).toBeUndefined();
        expect(await store.groups.members('g')).toEqual([]);
        expect(await store.groups.ofUser('u')).toEqual(['h']);
        expect(await store.groups.ofUser('v')).toEqual([]);
        expect((await store.users.list()).map((u) => u.name)).toEqual(['u', 'v']);
        expect(await store.groups.delete('g')).toBe(false);

        // A group re-created under the same name starts empty.
        await groups('g');
        expect(await store.groups.members('g')).toEqual([]);
      });

      it('deleting a user removes its memberships and access tokens; groups and audit events stay', async () => {
        await users('u', 'v');
        await groups('g');
        await store.groups.setMembers('g', ['u', 'v']);
        await store.accessTokens.create({ id: 'tu', userName: 'u', scope: 'applied-permissions/user', expiresAt: null });
        await store.accessTokens.create({ id: 'tv', userName: 'v', scope: 'applied-permissions/user', expiresAt: null });
        await store.audit.append(event({ actor: 'u', action: 'token.create', target: 'tu' }));

        expect(await store.users.delete('u')).toBe(true);

        expect(await store.groups.members('g')).toEqual(['v']);
        expect(await store.groups.ofUser('u')).toEqual([]);
        expect(await store.accessTokens.get('tu')).toBeUndefined();
        expect((await store.accessTokens.list()).map((t) => t.id)).toEqual(['tv']);
        expect(await store.groups.get('g')).toBeDefined();
        expect(await store.audit.list({ limit: 10, actor: 'u' })).toHaveLength(1);

        // A user re-created under the same name starts with no groups or tokens.
        await users('u');
        expect(await store.groups.ofUser('u')).toEqual([]);
        expect(await store.accessTokens.list('u')).toEqual([]);
      });

      it('a membership for a missing user or group rejects with the FK violation and keeps the previous memberships', async () => {
        await users('u', 'v');
        await groups('g', 'h');
        await store.groups.setMembers('g', ['u']);
        await store.groups.setUserGroups('v', ['h']);

        await expect(store.groups.setMembers('g', ['v', 'ghost'])).rejects.toMatchObject({ code: '23503' });
        await expect(store.groups.setMembers('ghost', ['u'])).rejects.toMatchObject({ code: '23503' });
        await expect(store.groups.setUserGroups('v', ['g', 'ghost'])).rejects.toMatchObject({ code: '23503' });
        await expect(store.groups.setUserGroups('ghost', ['g'])).rejects.toMatchObject({ code: '23503' });

        // Each failed replacement changed nothing, not even the deletions it started with.
        expect(await store.groups.members('g')).toEqual(['u']);
        expect(await store.groups.members('h')).toEqual(['v']);
        expect(await store.groups.ofUser('v')).toEqual(['h']);
        expect(await store.groups.get('ghost')).toBeUndefined();
        expect(await store.users.get('ghost')).toBeUndefined();
      });

      it('concurrent replacements of one side: one set wins whole, the sets are never merged', async () => {
        await users('a', 'b', 'c', 'd', 'old');
        await groups('g', 'x', 'y', 'z', 'w', 'old');
        for (let round = 0; round < 3; round++) {
          await store.groups.setMembers('g', ['old']);
          await Promise.all([store.groups.setMembers('g', ['a', 'b']), store.groups.setMembers('g', ['c', 'd'])]);
          expect([['a', 'b'], ['c', 'd']]).toContainEqual(await store.groups.members('g'));

          await store.groups.setUserGroups('a', ['old']);
          await Promise.all([store.groups.setUserGroups('a', ['x', 'y']), store.groups.setUserGroups('a', ['w', 'z'])]);
          expect([['x', 'y'], ['w', 'z']]).toContainEqual(await store.groups.ofUser('a'));
        }
      });
    });

    // ---- permissions ----------------------------------------------------------------

    describe('permissions', () => {
      /** The shape of an Artifactory v2 permission target. */
      function targetOf(name: string, repos: string[]): Record<string, unknown> {
        return {
          name,
          repo: {
            repositories: repos,
            include_patterns: ['**'],
            exclude_patterns: [],
            actions: { users: { alice: ['read', 'write'] }, groups: { 'dévs ✓': ['read'] } },
          },
          build: null,
        };
      }

      it('upsert resolves true when it creates; get round-trips the JSON', async () => {
        const target = targetOf('p', ['docker-local']);
        expect(await store.permissions.upsert('p', target)).toBe(true);
        expect(await store.permissions.get('p')).toEqual({
          name: 'p',
          target,
          createdAt: expect.any(Date),
          updatedAt: expect.any(Date),
        });
        expect(await store.permissions.get('nope')).toBeUndefined();
      });

      it('upsert of an existing name resolves false and replaces the whole JSON, moving updatedAt only', async () => {
        await store.permissions.upsert('p', targetOf('p', ['a', 'b']));
        const before = (await store.permissions.get('p'))!;
        await sleep(5);
        const replacement = { name: 'p', repo: { repositories: ['c'] } };
        expect(await store.permissions.upsert('p', replacement)).toBe(false);
        const after = (await store.permissions.get('p'))!;
        // Replaced, not merged: the keys only the old JSON had are gone.
        expect(after.target).toEqual(replacement);
        expect(after.createdAt).toEqual(before.createdAt);
        expect(after.updatedAt.getTime()).toBeGreaterThan(before.updatedAt.getTime());
        expect(await store.permissions.upsert('p', {})).toBe(false);
        expect((await store.permissions.get('p'))?.target).toEqual({});
      });

      it('concurrent upserts of a new name: exactly one resolves created', async () => {
        const results = await Promise.all([1, 2, 3, 4].map((n) => store.permissions.upsert('race', { n })));
        expect(results.filter(Boolean)).toHaveLength(1);
        expect([1, 2, 3, 4].map((n) => ({ n }))).toContainEqual((await store.permissions.get('race'))?.target);
      });

      it('list is in byte-wise lexical order', async () => {
        expect(await store.permissions.list()).toEqual([]);
        for (const name of ['a', 'B', 'a-b', 'a/b', 'ab']) await store.permissions.upsert(name, { name });
        const listed = await store.permissions.list();
        expect(listed.map((p) => p.name)).toEqual(['B', 'a', 'a-b', 'a/b', 'ab']);
        expect(listed.map((p) => p.target)).toEqual(['B', 'a', 'a-b', 'a/b', 'ab'].map((name) => ({ name })));
      });

      it('delete resolves true once, then false; a later upsert creates again', async () => {
        await store.permissions.upsert('p', { v: 1 });
        expect(await store.permissions.delete('p')).toBe(true);
        expect(await store.permissions.get('p')).toBeUndefined();
        expect(await store.permissions.delete('p')).toBe(false);
        expect(await store.permissions.upsert('p', { v: 2 })).toBe(true);
      });
    });

    // ---- access tokens --------------------------------------------------------------

    describe('access tokens', () => {
      beforeEach(async () => {
        await users('alice', 'bob');
      });

      it('create resolves the stored record that get finds; dates keep their milliseconds', async () => {
        const expiresAt = new Date('2031-05-06T07:08:09.123Z');
        const created = await store.accessTokens.create({
          id: 'jti-1',
          userName: 'alice',
          scope: 'applied-permissions/user',
          description: 'CI ✓',
          expiresAt,
        });
        expect(created).toEqual({
          id: 'jti-1',
          userName: 'alice',
          scope: 'applied-permissions/user',
          description: 'CI ✓',
          createdAt: expect.any(Date),
          expiresAt,
          revokedAt: null,
        });
        expect(created.expiresAt!.getTime()).toBe(expiresAt.getTime());
        expect(await store.accessTokens.get('jti-1')).toEqual(created);
      });

      it('create without description or expiry stores nulls', async () => {
        const created = await store.accessTokens.create({ id: 't', userName: 'bob', scope: 's', expiresAt: null });
        expect(created).toMatchObject({ description: null, expiresAt: null, revokedAt: null });
        expect(await store.accessTokens.get('t')).toEqual(created);
      });

      it('get resolves undefined for an unknown id', async () => {
        expect(await store.accessTokens.get('nope')).toBeUndefined();
      });

      it('create rejects a duplicate id and an unknown user', async () => {
        await store.accessTokens.create({ id: 't', userName: 'alice', scope: 's', expiresAt: null });
        await expect(store.accessTokens.create({ id: 't', userName: 'bob', scope: 's2', expiresAt: null })).rejects.toMatchObject({ code: '23505' });
        await expect(store.accessTokens.create({ id: 'u', userName: 'ghost', scope: 's', expiresAt: null })).rejects.toMatchObject({ code: '23503' });
        expect(await store.accessTokens.get('t')).toMatchObject({ userName: 'alice', scope: 's' });
        expect(await store.accessTokens.get('u')).toBeUndefined();
      });

      it("list resolves one user's tokens or everybody's, newest first", async () => {
        expect(await store.accessTokens.list()).toEqual([]);
        // Ids in the opposite order to creation: the order must come from the time.
        const created = [];
        for (const [id, userName] of [['t3', 'alice'], ['t2', 'bob'], ['t1', 'alice'], ['t0', 'bob']] as const) {
          created.push(await store.accessTokens.create({ id, userName, scope: 's', expiresAt: null }));
          await sleep(5);
        }
        await store.accessTokens.revoke('t3');
        expect((await store.accessTokens.list()).map((t) => t.id)).toEqual(['t0', 't1', 't2', 't3']);
        expect((await store.accessTokens.list('alice')).map((t) => t.id)).toEqual(['t1', 't3']);
        expect(await store.accessTokens.list('bob')).toEqual([created[3], created[1]]);
        // Revoked tokens are listed too.
        expect((await store.accessTokens.list('alice'))[1]!.revokedAt).toEqual(expect.any(Date));
        expect(await store.accessTokens.list('nobody')).toEqual([]);
      });

      it('revoke marks the token revoked, is idempotent (the first time stays) and resolves false for an unknown id', async () => {
        await store.accessTokens.create({ id: 't', userName: 'alice', scope: 's', expiresAt: null });
        await store.accessTokens.create({ id: 'other', userName: 'alice', scope: 's', expiresAt: null });
        expect(await store.accessTokens.revoke('t')).toBe(true);
        const revoked = (await store.accessTokens.get('t'))!;
        expect(revoked.revokedAt).toEqual(expect.any(Date));
        expect(revoked.revokedAt!.getTime()).toBeGreaterThanOrEqual(revoked.createdAt.getTime());
        await sleep(5);
        expect(await store.accessTokens.revoke('t')).toBe(true);
        expect(await store.accessTokens.get('t')).toEqual(revoked);
        expect((await store.accessTokens.get('other'))?.revokedAt).toBeNull();
        expect(await store.accessTokens.revoke('nope')).toBe(false);
        expect(await store.accessTokens.get('nope')).toBeUndefined();
      });
    });

    // ---- audit ----------------------------------------------------------------------

    describe('audit', () => {
      it('append then list round-trips every field, with jsonb details', async () => {
        const details = {
          repo: 'docker-local',
          digest: digestOf('m'),
          sizes: [0, 2.5, 2 ** 40],
          ok: true,
          none: null,
          nested: { list: [{ a: 'é✓' }], empty: {} },
        };
        await store.audit.append({
          actor: 'alice',
          action: 'manifest.put',
          target: 'docker-local/team/app@sha256:abc',
          outcome: 'success',
          clientIp: '2001:db8::1',
          details,
        });
        const [got, ...rest] = await store.audit.list({ limit: 10 });
        expect(rest).toEqual([]);
        expect(got).toEqual({
          id: expect.any(Number),
          at: expect.any(Date),
          actor: 'alice',
          action: 'manifest.put',
          target: 'docker-local/team/app@sha256:abc',
          outcome: 'success',
          clientIp: '2001:db8::1',
          details,
        });
        expect(Number.isSafeInteger(got!.id)).toBe(true);
        expect(Math.abs(got!.at.getTime() - Date.now())).toBeLessThan(60_000);
      });

      it('stores null target, clientIp and details, and every outcome', async () => {
        for (const outcome of ['success', 'failure', 'denied'] as const) await store.audit.append(event({ outcome }));
        const listed = await store.audit.list({ limit: 10 });
        expect(listed.map((e) => e.outcome)).toEqual(['denied', 'failure', 'success']);
        for (const e of listed) expect(e).toMatchObject({ target: null, clientIp: null, details: null });
      });

      it('rejects an outcome outside the three', async () => {
        await expect(store.audit.append(event({ outcome: 'maybe' as AuditOutcome }))).rejects.toMatchObject({ code: '23514' });
        expect(await store.audit.list({ limit: 10 })).toEqual([]);
      });

      it('list is newest first, at most `limit`, and pages with `before` (exclusive)', async () => {
        for (let i = 0; i < 5; i++) await store.audit.append(event({ target: `t${i}` }));
        const all = await store.audit.list({ limit: 100 });
        expect(all.map((e) => e.target)).toEqual(['t4', 't3', 't2', 't1', 't0']);
        for (let i = 1; i < all.length; i++) expect(all[i]!.id).toBeLessThan(all[i - 1]!.id);

        const pages: string[][] = [];
        let before: number | undefined;
        for (;;) {
          const page = await store.audit.list({ limit: 2, before });
          if (page.length === 0) break;
          pages.push(page.map((e) => e.target!));
          before = page[page.length - 1]!.id;
        }
        expect(pages).toEqual([['t4', 't3'], ['t2', 't1'], ['t0']]);
        expect(await store.audit.list({ limit: 10, before: all[2]!.id })).toEqual(all.slice(3));
        expect(await store.audit.list({ limit: 0 })).toEqual([]);
      });

      it('list filters by actor and action (exact matches), alone, together and with paging', async () => {
        const appended: Array<[string, string]> = [
          ['alice', 'login'],
          ['bob', 'login'],
          ['alice', 'token.create'],
          ['Alice', 'login'],
          ['alice', 'login'],
          ['alice', 'login.failed'],
        ];
        for (const [actor, action] of appended) await store.audit.append(event({ actor, action }));
        const pairs = (events: AuditEvent[]) => events.map((e) => `${e.actor}:${e.action}`);

        expect(pairs(await store.audit.list({ limit: 10, actor: 'alice' }))).toEqual(['alice:login.failed', 'alice:login', 'alice:token.create', 'alice:login']);
        expect(pairs(await store.audit.list({ limit: 10, action: 'login' }))).toEqual(['alice:login', 'Alice:login', 'bob:login', 'alice:login']);
        const both = await store.audit.list({ limit: 10, actor: 'alice', action: 'login' });
        expect(pairs(both)).toEqual(['alice:login', 'alice:login']);

        const first = await store.audit.list({ limit: 1, actor: 'alice', action: 'login' });
        expect(first).toEqual([both[0]]);
        expect(await store.audit.list({ limit: 10, actor: 'alice', action: 'login', before: first[0]!.id })).toEqual([both[1]]);
        expect(await store.audit.list({ limit: 10, actor: 'alice', action: 'login', before: both[1]!.id })).toEqual([]);

        expect(await store.audit.list({ limit: 10, actor: 'ali' })).toEqual([]);
        expect(await store.audit.list({ limit: 10, action: 'log' })).toEqual([]);
      });
    });

    // ---- garbage collection ----------------------------------------------------------

    describe('gc', () => {
      beforeEach(async () => {
        await repo('r');
      });

      /** Stores a manifest with references and resolves its digest. */
      async function manifestWith(image: string, seed: string, refs: Array<{ digest: string; kind: 'blob' | 'manifest' }>, subject: string | null = null): Promise<string> {
        const m = manifestOf('r', image, seed, { subject });
        expect(await store.manifests.put(m, refs)).toBe(true);
        return m.digest;
      }

      const keys = (ms: Array<{ repoKey: string; image: string; digest: string }>): string[] =>
        ms.map((m) => `${m.repoKey}/${m.image}@${m.digest}`).sort();

      it('protect, list, unprotect', async () => {
        await store.gc.protect({ digest: digestOf('b'), reason: 'running', pod: 'ns/p1' });
        await store.gc.protect({ digest: digestOf('a') });
        await store.gc.protect({ digest: digestOf('b'), reason: 'still running', pod: 'ns/p2' });
        const list = await store.gc.listProtected();
        expect(list.map((p) => p.digest)).toEqual([digestOf('a'), digestOf('b')].sort(cmp));
        expect(list.find((p) => p.digest === digestOf('b'))).toEqual({
          digest: digestOf('b'),
          reason: 'still running',
          pod: 'ns/p2',
          recordedAt: expect.any(Date),
        });
        expect(await store.gc.unprotect(digestOf('a'))).toBe(true);
        expect(await store.gc.unprotect(digestOf('a'))).toBe(false);
        expect((await store.gc.listProtected()).map((p) => p.digest)).toEqual([digestOf('b')]);
      });

      it('dead manifests: untagged and unreachable past retention; tags, children, referrers, protection keep', async () => {
        const child = await manifest('r', 'img', 'child');
        const index = await manifestWith('img', 'index', [{ digest: child, kind: 'manifest' }]);
        await store.tags.set('r', 'img', 'v1', index);
        const sig = await manifestWith('img', 'sig', [], index);
        const sigOfSig = await manifestWith('img', 'sig2', [], sig);
        const loose = await manifest('r', 'img', 'loose');
        const protectedOne = await manifest('r', 'img', 'protected');
        await store.gc.protect({ digest: protectedOne });
        const protectedChild = await manifest('r', 'img', 'protected-child');
        await manifestWith('img', 'protected-parent', [{ digest: protectedChild, kind: 'manifest' }]);
        await sleep(5);

        // A long retention keeps every untagged manifest.
        expect(await store.gc.deadManifests({ untaggedRetentionSecs: 3600, limit: 100 })).toEqual([]);

        const dead = await store.gc.deadManifests({ untaggedRetentionSecs: 0, limit: 100 });
        const protectedParent = manifestOf('r', 'img', 'protected-parent').digest;
        expect(keys(dead)).toEqual(keys([loose, protectedParent, protectedChild].map((digest) => ({ repoKey: 'r', image: 'img', digest }))));
        expect(dead.map((d) => d.digest)).not.toContain(sigOfSig);

        // Paging after a key.
        const first = await store.gc.deadManifests({ untaggedRetentionSecs: 0, limit: 1 });
        const rest = await store.gc.deadManifests({ untaggedRetentionSecs: 0, limit: 100, after: first[0] });
        expect(keys([...first, ...rest])).toEqual(keys(dead));

        // Deleting re-checks: a tag set since keeps the manifest; a child of an existing index is kept this pass.
        await store.tags.set('r', 'img', 'late', loose);
        const deleted = await store.gc.deleteManifests(dead, 0);
        expect(deleted.map((d) => d.digest)).toEqual([protectedParent]);
        expect(await store.manifests.get('r', 'img', loose)).toBeDefined();
        const again = await store.gc.deleteManifests(await store.gc.deadManifests({ untaggedRetentionSecs: 0, limit: 100 }), 0);
        expect(again.map((d) => d.digest)).toEqual([protectedChild]);
        expect(await store.gc.deleteManifests([], 0)).toEqual([]);
      });

      it('dead blobs: unreferenced past grace; references, protection, recent commits and links keep', async () => {
        const referenced = await blob('referenced');
        const orphan = await blob('orphan');
        const protectedBlob = await blob('protected');
        const onlyDead = await blob('only-dead');
        await store.gc.protect({ digest: protectedBlob });
        await store.blobs.link('r', 'img', orphan);
        const m = await manifestWith('img', 'm', [{ digest: referenced, kind: 'blob' }]);
        await store.tags.set('r', 'img', 'v1', m);
        await manifestWith('img', 'untagged', [{ digest: onlyDead, kind: 'blob' }]);
        await sleep(5);

        expect(await store.gc.countBlobs()).toBe(4);
        expect(await store.gc.deadBlobs({ graceSecs: 3600, limit: 100 })).toEqual([]);
        // Every stored manifest's references count…
        expect((await store.gc.deadBlobs({ graceSecs: 0, limit: 100 })).map((b) => b.digest)).toEqual([orphan]);
        // …unless only live manifests' do (a dry run, where dead manifests still exist).
        const dry = await store.gc.deadBlobs({ graceSecs: 0, limit: 100, untaggedRetentionSecs: 0 });
        expect(dry.map((b) => b.digest)).toEqual([orphan, onlyDead].sort(cmp));
        expect(dry.find((b) => b.digest === orphan)).toEqual({ digest: orphan, size: 10, storageKey: `blobs/${orphan}` });
        const firstDry = dry[0]!.digest;
        expect((await store.gc.deadBlobs({ graceSecs: 0, limit: 100, untaggedRetentionSecs: 0, after: firstDry })).map((b) => b.digest)).toEqual(
          dry.slice(1).map((b) => b.digest),
        );

        // A re-commit restarts the grace window.
        await store.gc.touch(orphan);
        expect(await store.gc.deadBlobs({ graceSecs: 3600, limit: 100 })).toEqual([]);
      });

      it('collect deletes rows and links under the lock and queues the objects; settle skips a blob committed again', async () => {
        const a = await blob('a');
        const b = await blob('b');
        const kept = await blob('kept');
        await store.blobs.link('r', 'img', a);
        const m = await manifestWith('img', 'm', [{ digest: kept, kind: 'blob' }]);
        await store.tags.set('r', 'img', 'v1', m);
        await sleep(5);

        await expect(store.gc.collect([a], 0)).rejects.toThrow('only valid inside transaction');
        const collected = await store.transaction(async (tx) => {
          await tx.gc.lockBlobs([b, a, kept]);
          return tx.gc.collect([a, b, kept], 0);
        });
        expect(collected.map((x) => x.digest)).toEqual([a, b].sort(cmp));
        expect(await store.blobs.get(a)).toBeUndefined();
        expect(await store.blobs.getLinked('r', 'img', a)).toBeUndefined();
        expect(await store.blobs.get(kept)).toBeDefined();
        expect((await store.gc.pendingObjects(10)).map((p) => p.digest).sort(cmp)).toEqual([a, b].sort(cmp));

        // b is committed again before its object goes: its object must stay.
        await store.blobs.put({ digest: b, size: 10, storageKey: `blobs/${b}` });
        const toDelete = await store.transaction(async (tx) => {
          await tx.gc.lockBlobs([a, b]);
          return tx.gc.settlePending([a, b]);
        });
        expect(toDelete).toEqual([`blobs/${a}`]);
        expect(await store.gc.pendingObjects(10)).toEqual([]);
      });

      it('refuses a local manifest whose collected blob is no longer linked; a remote one may reference it lazily', async () => {
        const a = await blob('a');
        await store.blobs.link('r', 'img', a);
        await sleep(5);
        await store.transaction(async (tx) => {
          await tx.gc.lockBlobs([a]);
          await tx.gc.collect([a], 0);
        });
        await expect(store.manifests.put(manifestOf('r', 'img', 'late'), [{ digest: a, kind: 'blob' }])).rejects.toMatchObject({ code: '40001' });
        expect(await store.manifests.get('r', 'img', manifestOf('r', 'img', 'late').digest)).toBeUndefined();

        await repo('remote', 'remote');
        expect(await store.manifests.put(manifestOf('remote', 'img', 'lazy'), [{ digest: a, kind: 'blob' }])).toBe(true);

        // Forgotten after the memory window: then a missing link is the caller's business again.
        await store.gc.pruneCollected(0);
        expect(await store.manifests.put(manifestOf('r', 'img', 'later'), [{ digest: a, kind: 'blob' }])).toBe(true);
      });

      it('refuses a local index whose child manifest was just collected', async () => {
        const child = await manifest('r', 'img', 'child');
        await sleep(5);
        expect(await store.gc.deleteManifests([{ repoKey: 'r', image: 'img', digest: child }], 0)).toHaveLength(1);
        await expect(store.manifests.put(manifestOf('r', 'img', 'index'), [{ digest: child, kind: 'manifest' }])).rejects.toMatchObject({
          code: '40001',
        });
        // A child never stored is the caller's business (the store allows it).
        const never = manifestOf('r', 'img', 'never').digest;
        expect(await store.manifests.put(manifestOf('r', 'img', 'index'), [{ digest: never, kind: 'manifest' }])).toBe(true);
      });

      it('saves and reads back the last run', async () => {
        expect(await store.gc.lastRun()).toBeUndefined();
        const startedAt = new Date('2024-01-01T00:00:00Z');
        await store.gc.saveRun({ startedAt, finishedAt: null, summary: { blobsDeleted: 1 } });
        await store.gc.saveRun({ startedAt, finishedAt: startedAt, summary: { blobsDeleted: 2 } });
        expect(await store.gc.lastRun()).toEqual({ startedAt, finishedAt: startedAt, summary: { blobsDeleted: 2 } });
      });
    });

    // ---- promotions -----------------------------------------------------------------

    describe('promotions', () => {
      function promotion(extra: Partial<Omit<PromotionRecord, 'id' | 'at'>> = {}): Omit<PromotionRecord, 'id' | 'at'> {
        return {
          actor: 'alice',
          sourceRepo: 'dev',
          targetRepo: 'prod',
          image: 'team/app',
          targetImage: 'team/app',
          tag: '1.0',
          targetTag: '1.0',
          digest: digestOf('promoted'),
          copy: true,
          ...extra,
        };
      }

      it('record round-trips every field and assigns id and at', async () => {
        const input = promotion({ targetImage: 'team/app-renamed', targetTag: 'stable', copy: false });
        const stored = await store.promotions.record(input);
        expect(stored).toEqual({ ...input, id: expect.any(Number), at: expect.any(Date) });
        expect(Number.isSafeInteger(stored.id)).toBe(true);
        expect(Math.abs(stored.at.getTime() - Date.now())).toBeLessThan(60_000);
        expect(await store.promotions.list('dev', { limit: 10 })).toEqual([stored]);
        expect(await store.promotions.list('prod', { limit: 10 })).toEqual([stored]);
      });

      it('list is from or into the repository, newest first, each promotion once, and needs no repository row', async () => {
        const a = await store.promotions.record(promotion({ tag: 'a' }));
        const b = await store.promotions.record(promotion({ sourceRepo: 'prod', targetRepo: 'dev', tag: 'b' }));
        const c = await store.promotions.record(promotion({ sourceRepo: 'other', targetRepo: 'elsewhere', tag: 'c' }));
        // Within one repository: matches on both sides, listed once.
        const d = await store.promotions.record(promotion({ sourceRepo: 'dev', targetRepo: 'dev', targetImage: 'team/copy', tag: 'd' }));
        expect((await store.promotions.list('dev', { limit: 10 })).map((p) => p.tag)).toEqual(['d', 'b', 'a']);
        expect(await store.promotions.list('prod', { limit: 10 })).toEqual([b, a]);
        expect(await store.promotions.list('elsewhere', { limit: 10 })).toEqual([c]);
        expect(await store.promotions.list('nowhere', { limit: 10 })).toEqual([]);
        expect(d.id).toBeGreaterThan(c.id);
      });

      it('list pages with limit and before (exclusive)', async () => {
        for (let i = 0; i < 5; i++) {
          await store.promotions.record(promotion(i % 2 ? { sourceRepo: 'prod', targetRepo: 'dev', tag: `t${i}` } : { tag: `t${i}` }));
        }
        await store.promotions.record(promotion({ sourceRepo: 'x', targetRepo: 'y', tag: 'unrelated' }));
        const pages: string[][] = [];
        let before: number | undefined;
        for (;;) {
          const page = await store.promotions.list('dev', { limit: 2, before });
          if (page.length === 0) break;
          pages.push(page.map((p) => p.tag));
          before = page[page.length - 1]!.id;
        }
        expect(pages).toEqual([['t4', 't3'], ['t2', 't1'], ['t0']]);
        expect(await store.promotions.list('dev', { limit: 0 })).toEqual([]);
      });

      it('keys and names compare byte-wise, exactly', async () => {
        await store.promotions.record(promotion({ sourceRepo: 'dev', targetRepo: 'prod' }));
        expect(await store.promotions.list('Dev', { limit: 10 })).toEqual([]);
        expect(await store.promotions.list('de', { limit: 10 })).toEqual([]);
        expect(await store.promotions.list('prod ', { limit: 10 })).toEqual([]);
      });

      it('records roll back with the transaction and are visible inside it first', async () => {
        await expect(
          store.transaction(async (tx) => {
            await tx.promotions.record(promotion());
            expect(await tx.promotions.list('dev', { limit: 10 })).toHaveLength(1);
            throw new Error('boom');
          }),
        ).rejects.toThrow('boom');
        expect(await store.promotions.list('dev', { limit: 10 })).toEqual([]);
        await store.transaction((tx) => tx.promotions.record(promotion()));
        expect(await store.promotions.list('dev', { limit: 10 })).toHaveLength(1);
      });

      describe('requests (idempotency keys)', () => {
        const request = { sourceRepo: 'dev', targetRepo: 'prod', image: 'team/app', targetImage: 'team/app', tag: '1.0', targetTag: null, copy: false };
        const result = { digest: digestOf('promoted'), tags: [{ tag: '1.0', targetTag: '1.0' }], manifests: [digestOf('promoted')], copy: false };

        it('recordRequest round-trips request and result as JSON and assigns at; getRequest of an unknown id is undefined', async () => {
          expect(await store.promotions.getRequest('uid-1')).toBeUndefined();
          expect(await store.promotions.recordRequest({ requestId: 'uid-1', request, result })).toBe(true);
          const stored = await store.promotions.getRequest('uid-1');
          expect(stored).toEqual({ requestId: 'uid-1', request, result, at: expect.any(Date) });
          expect(Math.abs(stored!.at.getTime() - Date.now())).toBeLessThan(60_000);
          expect(await store.promotions.getRequest('uid-2')).toBeUndefined();
        });

        it('recordRequest of an id already recorded resolves false and keeps the first record', async () => {
          expect(await store.promotions.recordRequest({ requestId: 'uid-1', request, result })).toBe(true);
          const first = await store.promotions.getRequest('uid-1');
          expect(await store.promotions.recordRequest({ requestId: 'uid-1', request: { other: true }, result: { other: true } })).toBe(false);
          expect(await store.promotions.getRequest('uid-1')).toEqual(first);
          // Inside a transaction too, without aborting it: its other writes commit.
          await store.transaction(async (tx) => {
            expect(await tx.promotions.recordRequest({ requestId: 'uid-1', request: {}, result: {} })).toBe(false);
            await tx.settings.set('after', 1);
          });
          expect(await store.settings.get('after')).toBe(1);
          expect(await store.promotions.getRequest('uid-1')).toEqual(first);
        });

        it('request ids compare byte-wise, exactly', async () => {
          await store.promotions.recordRequest({ requestId: 'Uid-1', request, result });
          expect(await store.promotions.getRequest('uid-1')).toBeUndefined();
          expect(await store.promotions.getRequest('Uid-1 ')).toBeUndefined();
          expect(await store.promotions.recordRequest({ requestId: 'uid-1', request, result })).toBe(true);
        });

        it('a record rolls back with its transaction and is visible inside it first', async () => {
          await expect(
            store.transaction(async (tx) => {
              expect(await tx.promotions.claimRequest('uid-1')).toBeUndefined();
              expect(await tx.promotions.recordRequest({ requestId: 'uid-1', request, result })).toBe(true);
              expect(await tx.promotions.getRequest('uid-1')).toMatchObject({ requestId: 'uid-1', result });
              throw new Error('boom');
            }),
          ).rejects.toThrow('boom');
          expect(await store.promotions.getRequest('uid-1')).toBeUndefined();
          // The rolled-back claim left nothing behind: the id can be claimed and recorded.
          await store.transaction(async (tx) => {
            expect(await tx.promotions.claimRequest('uid-1')).toBeUndefined();
            expect(await tx.promotions.recordRequest({ requestId: 'uid-1', request, result })).toBe(true);
          });
          expect(await store.promotions.getRequest('uid-1')).toMatchObject({ requestId: 'uid-1', request, result });
        });

        it('claimRequest resolves the recorded request, and is refused outside a transaction', async () => {
          await store.promotions.recordRequest({ requestId: 'uid-1', request, result });
          expect(await store.transaction((tx) => tx.promotions.claimRequest('uid-1'))).toMatchObject({ requestId: 'uid-1', request, result });
          expect(await store.transaction((tx) => tx.promotions.claimRequest('uid-2'))).toBeUndefined();
          await expect(store.promotions.claimRequest('uid-1')).rejects.toThrow(/inside transaction/);
        });

        it('a second claim of one id waits for the first transaction and then sees what it committed', async () => {
          let release!: () => void;
          const holding = new Promise<void>((resolve) => (release = resolve));
          let claimed!: () => void;
          const firstClaimed = new Promise<void>((resolve) => (claimed = resolve));
          const order: string[] = [];
          const first = store.transaction(async (tx) => {
            expect(await tx.promotions.claimRequest('uid-1')).toBeUndefined();
            claimed();
            await holding;
            await tx.promotions.recordRequest({ requestId: 'uid-1', request, result });
            order.push('first records');
          });
          await firstClaimed;
          const second = store.transaction(async (tx) => {
            const seen = await tx.promotions.claimRequest('uid-1');
            order.push('second claims');
            return seen;
          });
          // Give the second a chance to get past its claim (it must not).
          await new Promise((resolve) => setTimeout(resolve, 50));
          release();
          await first;
          expect(await second).toMatchObject({ requestId: 'uid-1', request, result });
          expect(order).toEqual(['first records', 'second claims']);
        });

        it('a second claim after the first transaction rolled back finds nothing and may record', async () => {
          let release!: () => void;
          const holding = new Promise<void>((resolve) => (release = resolve));
          let claimed!: () => void;
          const firstClaimed = new Promise<void>((resolve) => (claimed = resolve));
          const first = store.transaction(async (tx) => {
            await tx.promotions.claimRequest('uid-1');
            await tx.promotions.recordRequest({ requestId: 'uid-1', request, result: { failed: 'later' } });
            claimed();
            await holding;
            throw new Error('promotion failed');
          });
          await firstClaimed;
          const second = store.transaction(async (tx) => {
            const seen = await tx.promotions.claimRequest('uid-1');
            const recorded = await tx.promotions.recordRequest({ requestId: 'uid-1', request, result });
            return { seen, recorded };
          });
          release();
          await expect(first).rejects.toThrow('promotion failed');
          expect(await second).toEqual({ seen: undefined, recorded: true });
          expect(await store.promotions.getRequest('uid-1')).toMatchObject({ result });
        });
      });
    });

    // ---- transactions and locks -----------------------------------------------------

    describe('transaction', () => {
      it('commits when fn resolves and resolves its value', async () => {
        const value = await store.transaction(async (tx) => {
          await tx.repositories.create({ key: 'r', rclass: 'local', config: {} });
          await tx.settings.set('k', 1);
          // The transaction sees its own writes.
          expect(await tx.repositories.get('r')).toBeDefined();
          return 'done';
        });
        expect(value).toBe('done');
        expect(await store.repositories.get('r')).toBeDefined();
        expect(await store.settings.get('k')).toBe(1);
      });

      it('rolls back and rethrows when fn throws', async () => {
        const boom = new Error('boom');
        await expect(
          store.transaction(async (tx) => {
            await tx.repositories.create({ key: 'r', rclass: 'local', config: {} });
            await tx.manifests.put(manifestOf('r', 'img', 'm'), [{ digest: digestOf('l'), kind: 'blob' }]);
            await tx.settings.set('k', 1);
            throw boom;
          }),
        ).rejects.toBe(boom);
        expect(await store.repositories.get('r')).toBeUndefined();
        expect(await store.settings.get('k')).toBeUndefined();
        expect(await store.manifests.catalog({})).toEqual([]);
      });

      it('rolls back when a statement failed even if fn swallowed the error', async () => {
        await expect(
          store.transaction(async (tx) => {
            await tx.settings.set('k', 1);
            await tx.tags.set('nope', 'img', 'latest', digestOf('nope')).catch(() => undefined);
          }),
        ).rejects.toThrow();
        expect(await store.settings.get('k')).toBeUndefined();
        // The store is usable afterwards.
        await store.settings.set('k', 2);
        expect(await store.settings.get('k')).toBe(2);
      });

      it('nested transactions run inside the outer one', async () => {
        await expect(
          store.transaction(async (tx) => {
            const inner = await tx.transaction(async (nested) => {
              await nested.settings.set('inner', true);
              return 7;
            });
            expect(inner).toBe(7);
            expect(await tx.settings.get('inner')).toBe(true);
            throw new Error('outer fails');
          }),
        ).rejects.toThrow('outer fails');
        // The inner writes went with the outer rollback.
        expect(await store.settings.get('inner')).toBeUndefined();

        await store.transaction((tx) => tx.transaction((nested) => nested.settings.set('inner', 'kept')));
        expect(await store.settings.get('inner')).toBe('kept');
      });

      it('an error in a nested transaction rolls back the whole transaction', async () => {
        await expect(
          store.transaction(async (tx) => {
            await tx.settings.set('outer', 1);
            await tx.transaction(async () => {
              throw new Error('inner fails');
            });
          }),
        ).rejects.toThrow('inner fails');
        expect(await store.settings.get('outer')).toBeUndefined();
      });

      it('access-control writes commit with the transaction and are visible inside it first', async () => {
        await store.transaction(async (tx) => {
          await tx.users.upsert({ name: 'u', passwordHash: null, admin: false });
          await tx.groups.upsert({ name: 'g', description: 'd' });
          await tx.groups.upsert({ name: 'h' });
          await tx.groups.setMembers('g', ['u']);
          await tx.groups.setUserGroups('u', ['g', 'h']);
          expect(await tx.permissions.upsert('p', { v: 1 })).toBe(true);
          // Created earlier in this same transaction: still reported as an update.
          expect(await tx.permissions.upsert('p', { v: 2 })).toBe(false);
          await tx.accessTokens.create({ id: 't', userName: 'u', scope: 's', expiresAt: null });
          expect(await tx.accessTokens.revoke('t')).toBe(true);
          await tx.audit.append(event({ actor: 'u', action: 'token.create' }));
          await tx.audit.append(event({ actor: 'u', action: 'token.revoke' }));

          expect(await tx.groups.list()).toHaveLength(2);
          expect(await tx.groups.members('h')).toEqual(['u']);
          expect(await tx.groups.ofUser('u')).toEqual(['g', 'h']);
          expect((await tx.permissions.get('p'))?.target).toEqual({ v: 2 });
          expect((await tx.accessTokens.list('u')).map((t) => t.id)).toEqual(['t']);
          // One transaction shares `at`; the id still orders the events.
          expect((await tx.audit.list({ limit: 10, actor: 'u' })).map((e) => e.action)).toEqual(['token.revoke', 'token.create']);
        });
        expect(await store.groups.get('g')).toMatchObject({ description: 'd' });
        expect(await store.groups.ofUser('u')).toEqual(['g', 'h']);
        expect(await store.groups.members('g')).toEqual(['u']);
        expect((await store.permissions.list()).map((p) => p.target)).toEqual([{ v: 2 }]);
        expect((await store.accessTokens.get('t'))?.revokedAt).toEqual(expect.any(Date));
        expect((await store.audit.list({ limit: 10 })).map((e) => e.action)).toEqual(['token.revoke', 'token.create']);
      });

      it('access-control writes roll back with the transaction', async () => {
        await users('u', 'v');
        await groups('g');
        await store.groups.setMembers('g', ['u']);
        await store.permissions.upsert('p', { v: 1 });
        await store.accessTokens.create({ id: 't0', userName: 'u', scope: 's', expiresAt: null });
        await store.audit.append(event({ action: 'before' }));
        const snapshot = {
          groups: await store.groups.list(),
          permissions: await store.permissions.list(),
          tokens: await store.accessTokens.list(),
          audit: await store.audit.list({ limit: 10 }),
        };

        const boom = new Error('boom');
        await expect(
          store.transaction(async (tx) => {
            await tx.groups.upsert({ name: 'g', description: 'changed' });
            await tx.groups.upsert({ name: 'h' });
            await tx.groups.setMembers('g', ['v']);
            await tx.groups.setUserGroups('u', ['h']);
            expect(await tx.permissions.upsert('p', { v: 2 })).toBe(false);
            expect(await tx.permissions.upsert('q', { v: 1 })).toBe(true);
            await tx.accessTokens.create({ id: 't1', userName: 'v', scope: 's', expiresAt: new Date() });
            await tx.accessTokens.revoke('t0');
            await tx.audit.append(event({ action: 'inside' }));
            expect(await tx.groups.ofUser('u')).toEqual(['h']);
            await tx.users.delete('v');
            await tx.groups.delete('g');
            throw boom;
          }),
        ).rejects.toBe(boom);

        expect(await store.groups.list()).toEqual(snapshot.groups);
        expect(await store.groups.members('g')).toEqual(['u']);
        expect(await store.groups.ofUser('u')).toEqual(['g']);
        expect(await store.permissions.list()).toEqual(snapshot.permissions);
        expect(await store.accessTokens.list()).toEqual(snapshot.tokens);
        expect(await store.audit.list({ limit: 10 })).toEqual(snapshot.audit);
        expect(await store.users.get('v')).toBeDefined();
      });

      it('a failed membership inside a transaction rolls the whole transaction back', async () => {
        await users('u');
        await expect(
          store.transaction(async (tx) => {
            await tx.groups.upsert({ name: 'g' });
            await tx.audit.append(event());
            await tx.groups.setMembers('g', ['u', 'ghost']);
          }),
        ).rejects.toMatchObject({ code: '23503' });
        expect(await store.groups.get('g')).toBeUndefined();
        expect(await store.audit.list({ limit: 10 })).toEqual([]);
        // The store is usable afterwards.
        await groups('g');
        await store.groups.setMembers('g', ['u']);
        expect(await store.groups.members('g')).toEqual(['u']);
      });

      it('lock rejects outside a transaction', async () => {
        await expect(store.lock('x')).rejects.toThrow();
      });

      it('lock serializes transactions that take the same name', async () => {
        const events: string[] = [];
        const critical = (id: string) =>
          store.transaction(async (tx) => {
            await tx.lock('upstream:sha256:abc');
            events.push(`${id} in`);
            await sleep(30);
            events.push(`${id} out`);
          });
        await Promise.all([critical('a'), critical('b')]);
        expect([
          ['a in', 'a out', 'b in', 'b out'],
          ['b in', 'b out', 'a in', 'a out'],
        ]).toContainEqual(events);
      });

      it('lock is released at commit and at rollback', async () => {
        await store.transaction((tx) => tx.lock('L'));
        await expect(
          store.transaction(async (tx) => {
            await tx.lock('L');
            throw new Error('x');
          }),
        ).rejects.toThrow('x');
        await store.transaction((tx) => tx.lock('L'));
      });
    });
  });
}

export function digestOf(data: string | Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Byte-wise comparison (what COLLATE "C" does for these ASCII strings). */
function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
