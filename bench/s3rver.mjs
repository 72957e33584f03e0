// Shared by the tests (test/helpers/s3rver.ts re-exports it) and the benchmark.
/**
 * An s3rver (an S3 emulator on the local filesystem) on a free port, in its own
 * temp directory, with one bucket. See TECH.md "Object storage" for what it lacks.
 *
 * It runs in a child process, so tests that measure this process's memory see the
 * driver's buffers only, not the emulator's request handling.
 *
 * One deviation from stock s3rver, to match S3: its store writes an object file in
 * place (and answers before the bytes are on disk), so two PUTs of one key can
 * interleave into a mix of both and a reader can see half an object. S3 PUTs are
 * atomic, and drivers rely on that, so the child replaces the store's putObject
 * with write-temp-then-rename followed by the metadata, one PUT per key at a time.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';

/** The child: CommonJS, because s3rver is. Prints `PORT <n>` once listening. */
const CHILD = String.raw`
const { createHash, randomUUID } = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const S3rver = require(process.env.S3RVER_MAIN);
const server = new S3rver({
  address: '127.0.0.1', port: 0, silent: true,
  directory: process.env.S3RVER_DIR,
  configureBuckets: [{ name: process.env.S3RVER_BUCKET }],
});
const store = server.store;
const queues = new Map();
async function putOnce(object) {
  const objectPath = store.getResourcePath(object.bucket, object.key, 'object');
  await fs.promises.mkdir(path.dirname(objectPath), { recursive: true });
  const tmp = objectPath + '.tmp-' + randomUUID();
  const md5 = createHash('md5');
  let size = 0;
  try {
    await new Promise((resolve, reject) => {
      const out = fs.createWriteStream(tmp).on('error', reject).on('close', resolve);
      if (Buffer.isBuffer(object.content)) {
        md5.update(object.content);
        size = object.content.length;
        out.end(object.content);
        return;
      }
      object.content.on('error', (err) => out.destroy(err));
      object.content.on('data', (chunk) => { md5.update(chunk); size += chunk.length; });
      object.content.pipe(out);
    });
    await fs.promises.rename(tmp, objectPath);
  } catch (err) {
    await fs.promises.rm(tmp, { force: true });
    throw err;
  }
  const digest = md5.digest('hex');
  await store.putMetadata(object.bucket, object.key, object.metadata, digest);
  return { size, md5: digest };
}
store.putObject = (object) => {
  const id = object.bucket + '/' + object.key;
  const run = (queues.get(id) || Promise.resolve()).catch(() => undefined).then(() => putOnce(object));
  queues.set(id, run);
  run.finally(() => { if (queues.get(id) === run) queues.delete(id); }).catch(() => undefined);
  return run;
};
server.run().then(({ port }) => console.log('PORT ' + port), (err) => { console.error(err); process.exit(1); });
process.on('disconnect', () => process.exit(0));
`;

export async function startS3rver(bucket = 'drydock-test') {
  const directory = await mkdtemp(path.join(tmpdir(), 'drydock-s3rver-'));
  const child = spawn(process.execPath, ['-e', CHILD], {
    // An IPC channel, so the child exits with this process even if close() is never called.
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    env: {
      ...process.env,
      NODE_OPTIONS: '',
      S3RVER_MAIN: createRequire(import.meta.url).resolve('s3rver'),
      S3RVER_DIR: directory,
      S3RVER_BUCKET: bucket,
    },
  });
  const exited = new Promise((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`s3rver exited with ${code} before listening`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /^PORT (\d+)$/.exec(line);
      if (m) resolve(Number(m[1]));
    });
  });
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    bucket,
    pid: child.pid,
    settings: { bucket, region: 'us-east-1', endpoint, forcePathStyle: true, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    close: async () => {
      child.kill();
      await exited;
      await rm(directory, { recursive: true, force: true });
    },
  };
}
