/**
 * A counting reverse proxy for remote-repository tests: a node:http server on
 * 127.0.0.1 that forwards every request to `target` unchanged (Host header
 * included, so URLs the upstream builds — token realms, Locations — point
 * back at the proxy and are counted too) and records each one by method and
 * path. It can be told to misbehave:
 *
 *   const px = await startCountingProxy('http://127.0.0.1:5000');
 *   px.count('GET', `/v2/img/blobs/${digest}`);   // requests seen so far
 *   px.fail(503);                                  // answer 503 (or 429) without forwarding
 *   px.stall();                                    // accept requests, never answer
 *   await px.stop();                               // stop listening: connections are refused
 *   await px.resume();                             // listen again on the same port, forward again
 *   await px.close();
 */
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface ProxiedRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  /** Path and query as sent. */
  url: string;
  /** The status answered (the upstream's, or the injected failure's); undefined while pending or when none was sent. */
  status?: number;
}

export type ProxyMode =
  | { kind: 'pass' }
  | { kind: 'fail'; status: number; retryAfter?: string; match?: (r: ProxiedRequest) => boolean }
  | { kind: 'stall' };

export interface CountingProxy {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `127.0.0.1:PORT` */
  host: string;
  port: number;
  /** Every request received, in arrival order (not those refused while stopped: they never arrive). */
  readonly requests: ProxiedRequest[];
  /** Requests with this method whose path equals `path` (a string) or matches it (a RegExp). */
  count(method: string, path: string | RegExp): number;
  /** Requests whose path matches, whatever the method. */
  countAll(path?: string | RegExp): number;
  /** Forgets the requests seen so far. */
  reset(): void;
  /** Forward every request (the default). */
  pass(): void;
  /** Answer `status` (with `Retry-After` when given) without forwarding; only requests `match` accepts when given. */
  fail(status: number, opts?: { retryAfter?: string; match?: (r: ProxiedRequest) => boolean }): void;
  /** Accept requests and never answer them (until `pass`, `stop` or `close`). */
  stall(): void;
  /** Stops listening and drops every open connection: the upstream looks down. */
  stop(): Promise<void>;
  /** Listens again on the same port and forwards. */
  resume(): Promise<void>;
  close(): Promise<void>;
}

function matches(path: string, want: string | RegExp | undefined): boolean {
  if (want === undefined) return true;
  return typeof want === 'string' ? path === want : want.test(path);
}

export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const upstream = new URL(target);
  const requests: ProxiedRequest[] = [];
  const sockets = new Set<Socket>();
  const stalled = new Set<ServerResponse>();
  const agent = new http.Agent({ keepAlive: true });
  let mode: ProxyMode = { kind: 'pass' };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = req.url ?? '/';
    const rec: ProxiedRequest = { method: req.method ?? 'GET', path: url.split('?')[0]!, url };
    requests.push(rec);
    const current = mode;
    if (current.kind === 'stall') {
      stalled.add(res);
      res.once('close', () => stalled.delete(res));
      req.resume();
      return;
    }
    if (current.kind === 'fail' && (!current.match || current.match(rec))) {
      req.resume();
      rec.status = current.status;
      const body = JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: `injected ${current.status}`, detail: null }] });
      res.writeHead(current.status, {
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
        ...(current.retryAfter !== undefined ? { 'retry-after': current.retryAfter } : {}),
      });
      res.end(body);
      return;
    }
    const out = http.request(
      {
        protocol: upstream.protocol,
        hostname: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: url,
        headers: req.headers,
        agent,
      },
      (up) => {
        rec.status = up.statusCode;
        res.writeHead(up.statusCode ?? 502, up.rawHeaders);
        up.pipe(res);
        up.once('error', () => res.destroy());
        res.once('close', () => {
          if (!up.complete) up.destroy();
        });
      },
    );
    out.once('error', () => {
      if (!res.headersSent) {
        rec.status = 502;
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end('upstream unreachable');
      } else {
        res.destroy();
      }
    });
    req.pipe(out);
    res.once('close', () => {
      if (!res.writableFinished) out.destroy();
    });
  };

  const server: Server = http.createServer({ keepAliveTimeout: 5000 }, handle);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  await listen(0);
  const port = (server.address() as AddressInfo).port;
  let listening = true;

  const dropAll = () => {
    for (const res of stalled) res.destroy();
    stalled.clear();
    for (const s of sockets) s.destroy();
  };
  const stop = async () => {
    if (!listening) return;
    listening = false;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    dropAll();
    await closed;
  };

  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    port,
    requests,
    count: (method, path) => requests.filter((r) => r.method === method && matches(r.path, path)).length,
    countAll: (path) => requests.filter((r) => matches(r.path, path)).length,
    reset: () => {
      requests.length = 0;
    },
    pass: () => {
      mode = { kind: 'pass' };
    },
    fail: (status, opts = {}) => {
      mode = { kind: 'fail', status, retryAfter: opts.retryAfter, match: opts.match };
    },
    stall: () => {
      mode = { kind: 'stall' };
    },
    stop,
    resume: async () => {
      mode = { kind: 'pass' };
      if (listening) return;
      await listen(port);
      listening = true;
    },
    close: async () => {
      await stop();
      agent.destroy();
    },
  };
}
