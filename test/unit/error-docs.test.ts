import { describe, expect, it } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { CODES } from '../../src/core/errors.js';

describe('docs/errors.md', () => {
  it('lists every code of the error table with its status, and nothing else', async () => {
    const doc = await readFile(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    const rows = [...doc.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1], Number(m[2])]);
    expect(Object.fromEntries(rows)).toEqual(Object.fromEntries(Object.entries(CODES).map(([k, v]) => [k, v.status])));
  });
});
