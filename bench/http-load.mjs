// A small closed-loop HTTP/1.1 load generator on raw sockets (keep-alive, one
// request in flight per connection, worker threads like wrk's -t).
//
// Why: wrk 4.1 (Debian) cannot benchmark HEAD. Its parser has no
// on_headers_complete hook, so after a HEAD response with `Content-Length: N`
// it waits for N body bytes that never come and counts 0 requests. This
// loader knows a HEAD response ends at the blank line.
import { connect } from 'node:net';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const CRLFCRLF = Buffer.from('\r\n\r\n');

function buildRequest(url, method, headers) {
  const u = new URL(url);
  const lines = [`${method} ${u.pathname}${u.search} HTTP/1.1`, `Host: ${u.host}`, 'User-Agent: drydock-bench'];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  return { host: u.hostname, port: Number(u.port || 80), bytes: Buffer.from(lines.join('\r\n') + '\r\n\r\n') };
}

async function workerMain({ url, method, headers, connections, durationMs }) {
  const req = buildRequest(url, method, headers);
  const isHead = method === 'HEAD';
  const stats = { requests: 0, non2xx: 0, errors: 0, latencyUsSum: 0, statuses: {} };
  const startedAt = Date.now();
  const endAt = startedAt + durationMs;

  function runConnection() {
    return new Promise((resolve) => {
      let buf = Buffer.alloc(0);
      let started = 0n;
      let expectBody = -1; // body bytes still expected after the headers, -1 = reading headers
      const sock = connect({ host: req.host, port: req.port, noDelay: true });
      const send = () => {
        if (Date.now() >= endAt) {
          sock.destroy();
          return;
        }
        started = process.hrtime.bigint();
        sock.write(req.bytes);
      };
      const done = (status) => {
        stats.requests++;
        stats.latencyUsSum += Number((process.hrtime.bigint() - started) / 1000n);
        stats.statuses[status] = (stats.statuses[status] ?? 0) + 1;
        if (status < 200 || status > 399) stats.non2xx++;
      };
      let status = 0;
      sock.on('connect', send);
      sock.on('data', (chunk) => {
        buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
        for (;;) {
          if (expectBody < 0) {
            const end = buf.indexOf(CRLFCRLF);
            if (end < 0) return;
            const head = buf.subarray(0, end).toString('latin1');
            buf = buf.subarray(end + 4);
            status = Number(head.slice(9, 12));
            const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
            if (!isHead && /\r\ntransfer-encoding:\s*chunked/i.test(head)) {
              stats.errors++;
              sock.destroy(new Error('chunked responses are not supported'));
              return;
            }
            expectBody = isHead || status === 204 || status === 304 ? 0 : cl ? Number(cl[1]) : 0;
          }
          if (buf.length < expectBody) return;
          buf = buf.subarray(expectBody);
          expectBody = -1;
          done(status);
          if (buf.length) {
            stats.errors++;
            sock.destroy();
            return;
          }
          send();
          return;
        }
      });
      sock.on('error', () => {
        stats.errors++;
      });
      sock.on('close', () => {
        // the server closed a keep-alive connection: reconnect while time remains
        if (Date.now() < endAt) setTimeout(() => runConnection().then(resolve), 1);
        else resolve();
      });
    });
  }

  await Promise.all(Array.from({ length: connections }, () => runConnection()));
  return { ...stats, elapsedMs: Date.now() - startedAt };
}

/**
 * Runs `connections` keep-alive connections across `threads` worker threads
 * for `durationMs`; resolves to { requests, rps, non2xx, errors, avgLatencyMs, statuses }.
 */
export async function httpLoad({ url, method = 'HEAD', headers = {}, connections = 32, threads = 2, durationMs = 5000 }) {
  const per = Array.from({ length: threads }, (_, i) => Math.floor(connections / threads) + (i < connections % threads ? 1 : 0));
  const results = await Promise.all(
    per
      .filter((n) => n > 0)
      .map(
        (n) =>
          new Promise((resolve, reject) => {
            const w = new Worker(new URL(import.meta.url), {
              workerData: { url, method, headers, connections: n, durationMs },
            });
            w.once('message', resolve);
            w.once('error', reject);
            w.once('exit', (code) => {
              if (code !== 0) reject(new Error(`load worker exited with ${code}`));
            });
          }),
      ),
  );
  const seconds = Math.max(...results.map((r) => r.elapsedMs)) / 1000;
  const total = { requests: 0, non2xx: 0, errors: 0, latencyUsSum: 0, statuses: {} };
  for (const r of results) {
    total.requests += r.requests;
    total.non2xx += r.non2xx;
    total.errors += r.errors;
    total.latencyUsSum += r.latencyUsSum;
    for (const [k, v] of Object.entries(r.statuses)) total.statuses[k] = (total.statuses[k] ?? 0) + v;
  }
  return {
    requests: total.requests,
    seconds,
    rps: total.requests / seconds,
    non2xx: total.non2xx,
    errors: total.errors,
    avgLatencyMs: total.requests ? total.latencyUsSum / total.requests / 1000 : 0,
    statuses: total.statuses,
  };
}

if (!isMainThread && workerData && parentPort) {
  const port = parentPort;
  workerMain(workerData).then((stats) => port.postMessage(stats));
}
