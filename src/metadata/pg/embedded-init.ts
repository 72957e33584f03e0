/**
 * Run as `node embedded-init.js <dataDir>` by pglite-db.ts: creates (initdb) and
 * migrates an embedded database in a short-lived process, whose WebAssembly
 * memory — which never shrinks — goes away with it.
 */
import { migrate } from '../migrations.js';
import { PgliteDb } from './pglite-db.js';

const dataDir = process.argv[2];
if (!dataDir) {
  console.error('usage: embedded-init <dataDir>');
  process.exit(2);
}
const db = await PgliteDb.open({ dataDir, initializeHere: true });
try {
  await migrate(db);
} finally {
  await db.close();
}
