import { describe, expect, it } from '@jest/globals';
import { digestsInUse, imageHosts, parseImageId, POD_REASON, protectionChanges } from '../../src/operator/in-use.js';
import { setCondition } from '../../src/operator/conditions.js';
import { staleImageCounts } from '../../src/operator/image-counts.js';
import { WorkQueue } from '../../src/operator/queue.js';
import { sameJson } from '../../src/operator/same-json.js';
import { parseNamespaces, trimPod } from '../../src/operator/main.js';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const D3 = `sha256:${'3'.repeat(64)}`;

function pod(name: string, phase: string, imageIDs: string[], init: string[] = []) {
  return {
    metadata: { name, namespace: 'apps' },
    status: { phase, containerStatuses: imageIDs.map((imageID) => ({ imageID })), initContainerStatuses: init.map((imageID) => ({ imageID })) },
  };
}

describe('image counts', () => {
  const now = new Date();
  function repo(name: string, spec: Record<string, unknown>, status: Record<string, unknown>, ready = 'True', deleting = false) {
    return {
      metadata: { name, namespace: 'team-a', ...(deleting ? { deletionTimestamp: now.toISOString() } : {}) },
      spec,
      status: { ...status, conditions: setCondition(undefined, { type: 'Ready', status: ready as 'True', reason: 'x', message: '' }, now) },
    };
  }

  it('finds the Ready local and remote resources whose count moved, by their key', () => {
    const resources = [
      repo('same', { type: 'local' }, { imageCount: 2 }),
      repo('grew', { type: 'local' }, { imageCount: 0 }),
      repo('renamed', { type: 'remote', key: 'hub', remote: { url: 'https://r' } }, { imageCount: 1 }),
      repo('emptied', { type: 'local' }, { imageCount: 3 }),
      repo('virtual', { type: 'virtual', virtual: { repositories: ['same'] } }, { imageCount: 0 }),
      repo('loser', { type: 'local', key: 'same' }, { imageCount: 0 }, 'False'),
      repo('going', { type: 'local' }, { imageCount: 0 }, 'True', true),
      repo('new', { type: 'local' }, {}),
    ];
    const counts = new Map([
      ['same', 2],
      ['grew', 1],
      ['hub', 4],
      ['virtual', 9],
      ['going', 5],
      ['new', 1],
    ]);
    expect(staleImageCounts(resources, counts)).toEqual(['team-a/grew', 'team-a/renamed', 'team-a/emptied']);
  });
});

describe('in-use protection', () => {
  it('parses the imageID forms container runtimes report', () => {
    expect(parseImageId(`docker-pullable://registry.example.com/team-a/app@${D1}`)).toEqual({ host: 'registry.example.com', digest: D1 });
    expect(parseImageId(`registry.example.com:5000/team-a/app@${D1}`)).toEqual({ host: 'registry.example.com:5000', digest: D1 });
    expect(parseImageId(D1)).toBeUndefined();
    expect(parseImageId('docker://sha256:abc')).toBeUndefined();
  });

  it('collects digests of unfinished Pods from drydock hosts, init containers included', () => {
    const pods = [
      pod('a', 'Running', [`registry.example.com/team-a/app@${D1}`], [`registry.example.com/team-a/init@${D3}`]),
      pod('b', 'Succeeded', [`registry.example.com/team-a/job@${D2}`]),
      pod('c', 'Running', [`docker.io/library/nginx@${D2}`]),
    ];
    expect([...digestsInUse(pods, ['registry.example.com'])]).toEqual([
      [D1, 'apps/a'],
      [D3, 'apps/a'],
    ]);
    expect([...digestsInUse(pods).keys()].sort()).toEqual([D1, D2, D3]);
  });

  it('lists the registry hosts of running Pods, so mirrored upstream hosts can be let in', () => {
    const pods = [
      pod('a', 'Running', [`registry.example.com/team-a/app@${D1}`]),
      pod('b', 'Succeeded', [`ghcr.io/x/job@${D2}`]),
      pod('c', 'Running', [`docker.io/library/nginx@${D2}`, D3]),
    ];
    expect([...imageHosts(pods)].sort()).toEqual(['docker.io', 'registry.example.com']);
    expect([...digestsInUse(pods, new Set(['registry.example.com', 'docker.io']))]).toEqual([
      [D1, 'apps/a'],
      [D2, 'apps/c'],
    ]);
    expect([...digestsInUse(pods, [])]).toEqual([]);
  });

  it('keeps what it needs of a Pod and drops the rest', () => {
    const full = { ...pod('a', 'Running', [`registry.example.com/team-a/app@${D1}`], [`registry.example.com/team-a/init@${D3}`]), spec: { containers: [{ name: 'c', image: 'x', env: [{ name: 'BIG', value: 'x'.repeat(1000) }] }] } };
    const trimmed = trimPod(full);
    expect(JSON.stringify(trimmed)).not.toContain('BIG');
    expect([...digestsInUse([trimmed])]).toEqual([...digestsInUse([full])]);
  });

  it('adds what is new and removes only its own rows that are no longer used', () => {
    const at = new Date();
    const stored = [
      { digest: D1, reason: POD_REASON, pod: 'apps/a', recordedAt: at },
      { digest: D2, reason: POD_REASON, pod: 'apps/old', recordedAt: at },
      { digest: D3, reason: 'kept by hand', pod: null, recordedAt: at },
    ];
    const inUse = new Map([
      [D1, 'apps/a'],
      [`sha256:${'4'.repeat(64)}`, 'apps/new'],
    ]);
    expect(protectionChanges(inUse, stored)).toEqual({ protect: [{ digest: `sha256:${'4'.repeat(64)}`, pod: 'apps/new' }], unprotect: [D2] });
  });
});

describe('conditions', () => {
  it('moves lastTransitionTime only when the status flips', () => {
    const t1 = new Date('2026-01-01T00:00:00Z');
    const t2 = new Date('2026-01-02T00:00:00Z');
    const a = setCondition(undefined, { type: 'Ready', status: 'True', reason: 'A', message: 'a' }, t1);
    const b = setCondition(a, { type: 'Ready', status: 'True', reason: 'B', message: 'b' }, t2);
    expect(b).toEqual([{ type: 'Ready', status: 'True', reason: 'B', message: 'b', lastTransitionTime: t1.toISOString() }]);
    const c = setCondition(b, { type: 'Ready', status: 'False', reason: 'C', message: 'c' }, t2);
    expect(c[0]!.lastTransitionTime).toBe(t2.toISOString());
  });
});

describe('sameJson', () => {
  it('ignores key order and undefined keys, not array order', () => {
    expect(sameJson({ a: 1, b: { c: [1, 2] } }, { b: { c: [1, 2] }, a: 1, d: undefined })).toBe(true);
    expect(sameJson({ a: [1, 2] }, { a: [2, 1] })).toBe(false);
    expect(sameJson({ a: 1 }, { a: '1' })).toBe(false);
  });
});

describe('parseNamespaces', () => {
  it('reads a comma list; empty means all', () => {
    expect(parseNamespaces(' team-a, platform ,,')).toEqual(['team-a', 'platform']);
    expect(parseNamespaces(undefined)).toEqual([]);
  });
});

describe('WorkQueue', () => {
  it('runs a key once however often it is added, and again when added during its run', async () => {
    const runs: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const q = new WorkQueue({
      worker: async (key) => {
        runs.push(key);
        if (runs.length === 1) await gate;
      },
      concurrency: 2,
    });
    q.add('a');
    q.add('a');
    await new Promise((r) => setImmediate(r));
    q.add('a'); // during the run: once more after it
    q.add('a');
    expect(runs).toEqual(['a']);
    release();
    await waitFor(() => runs.length === 2);
    await new Promise((r) => setTimeout(r, 20));
    expect(runs).toEqual(['a', 'a']);
    await q.shutdown();
  });

  it('retries failures with exponential backoff and forgets them after a success', async () => {
    let calls = 0;
    const times: number[] = [];
    const q = new WorkQueue({
      worker: async () => {
        times.push(Date.now());
        calls++;
        if (calls < 3) throw new Error('boom');
      },
      baseDelayMs: 20,
    });
    expect([q.backoff(1), q.backoff(2), q.backoff(3), q.backoff(30)]).toEqual([20, 40, 80, 300_000]);
    q.add('k');
    await waitFor(() => calls === 3);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(15);
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(35);
    await new Promise((r) => setTimeout(r, 10));
    expect(q.failuresOf('k')).toBe(0);
    await q.shutdown();
  });

  it('never works on one key twice at once', async () => {
    let active = 0;
    let most = 0;
    let runs = 0;
    const q = new WorkQueue({
      worker: async () => {
        active++;
        most = Math.max(most, active);
        await new Promise((r) => setTimeout(r, 5));
        active--;
        runs++;
      },
      concurrency: 4,
    });
    for (let i = 0; i < 20; i++) {
      q.add('same');
      await new Promise((r) => setTimeout(r, 1));
    }
    await waitFor(() => active === 0 && q.depth() === 0 && runs > 1);
    expect(most).toBe(1);
    await q.shutdown();
  });
});

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}
