#!/usr/bin/env node
// Side-by-side registry benchmark: two targets (bench/targets.mjs) running at
// once, phases interleaved between them (the order flips every round), N
// rounds, medians and ratios.
//
//   node bench/run.mjs [--targets cncf,drydock] [--rounds 3] [options]
//
// Phases, per round and target:
//   push      skopeo copy of a fresh ~100 MiB 5-layer OCI image (new content
//             every round, so nothing is skipped or mounted)
//   pull      skopeo copy of that image back into an empty oci: directory
//   manifest  wrk GET of the manifest by digest, with an OCI/Docker Accept header
//   head      HEAD of a 20 MiB layer blob (bench/http-load.mjs: wrk 4.1
//             cannot do HEAD, see there)
//   upload    peak RSS of the server during a 1 GiB monolithic blob upload
//             (POST, then one streamed PUT ?digest=), VmRSS sampled every
//             50 ms plus VmHWM after a clear_refs reset
// Results: a table on stdout, JSON in .bench/results.json (--out).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { httpLoad } from './http-load.mjs';
import { buildImage, pseudoRandomChunks } from './oci-layout.mjs';
import { run } from './proc.mjs';
import { startTarget, targets as knownTargets } from './targets.mjs';

const MiB = 1024 * 1024;
const PHASES = ['push', 'pull', 'manifest', 'head', 'upload'];
const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

const USAGE = `usage: node bench/run.mjs [options]

  --targets A,B         two of: ${Object.keys(knownTargets).join(', ')} (default cncf,drydock;
                        cncf,cncf checks the harness against itself)
  --rounds N            rounds, each phase interleaved between the targets (default 3)
  --image-mib N         image size for push/pull (default 100)
  --layers N            layers of that image (default 5)
  --duration S          seconds per wrk / HEAD load run (default 5)
  --threads N           load threads (default 2)
  --connections N       load connections (default 32)
  --upload-mib N        blob size of the RSS phase (default 1024)
  --phases LIST         subset of ${PHASES.join(',')} (default all)
  --cncf-auth           run cncf targets with htpasswd Basic auth
  --out FILE            JSON results (default .bench/results.json)

drydock targets need a build first (npm run build; npm run bench does both).`;

function fail(msg) {
  console.error(msg);
  process.exit(2);
}

function options() {
  const { values } = parseArgs({
    options: {
      targets: { type: 'string', default: 'cncf,drydock' },
      rounds: { type: 'string', default: '3' },
      'image-mib': { type: 'string', default: '100' },
      layers: { type: 'string', default: '5' },
      duration: { type: 'string', default: '5' },
      threads: { type: 'string', default: '2' },
      connections: { type: 'string', default: '32' },
      'upload-mib': { type: 'string', default: '1024' },
      phases: { type: 'string', default: PHASES.join(',') },
      'cncf-auth': { type: 'boolean', default: false },
      out: { type: 'string', default: '.bench/results.json' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const int = (name, min = 1) => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < min) fail(`--${name} must be an integer >= ${min}\n\n${USAGE}`);
    return n;
  };
  const targets = values.targets.split(',').map((s) => s.trim());
  if (targets.length !== 2) fail(`--targets takes exactly two targets\n\n${USAGE}`);
  for (const t of targets) if (!knownTargets[t]) fail(`unknown target ${t}\n\n${USAGE}`);
  const phases = values.phases.split(',').map((s) => s.trim());
  for (const p of phases) if (!PHASES.includes(p)) fail(`unknown phase ${p}\n\n${USAGE}`);
  if (phases.includes('pull') && !phases.includes('push')) fail('the pull phase needs the push phase');
  return {
    targets,
    rounds: int('rounds'),
    imageMiB: int('image-mib'),
    layers: int('layers'),
    durationS: int('duration'),
    threads: int('threads'),
    connections: int('connections'),
    uploadMiB: int('upload-mib'),
    phases: new Set(phases),
    cncfAuth: values['cncf-auth'],
    out: resolve(values.out),
  };
}

// ---------------------------------------------------------------- helpers

const log = (...a) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...a);

function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

function authHeaders(t) {
  return t.creds ? { Authorization: 'Basic ' + Buffer.from(`${t.creds.user}:${t.creds.pass}`).toString('base64') } : {};
}

function httpRequest(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolvePromise, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body instanceof Readable) {
      pipeline(body, req).catch(reject);
    } else {
      req.end(body);
    }
  });
}

async function timed(fn) {
  const t0 = process.hrtime.bigint();
  const value = await fn();
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, value };
}

function toolVersion(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0].trim();
  } catch (e) {
    const out = e && typeof e === 'object' && 'stdout' in e ? String(e.stdout) : '';
    return out.split('\n')[0].trim() || 'unknown';
  }
}

function luaString(s) {
  return '"' + s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') + '"';
}

// ---------------------------------------------------------------- phases

function skopeoEnv(tmp) {
  return {
    ...process.env,
    REGISTRY_AUTH_FILE: join(tmp, 'auth.json'),
    DOCKER_CONFIG: join(tmp, 'docker-config'),
    XDG_CONFIG_HOME: join(tmp, 'xdg'),
  };
}

function imageRef(t, round) {
  return `${t.host}/${t.repoPrefix}bench/app:r${round}`;
}

async function phasePush(ctx, t, round, layoutDir) {
  const args = ['copy', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false'];
  if (t.creds) args.push('--dest-creds', `${t.creds.user}:${t.creds.pass}`);
  args.push(`oci:${layoutDir}:bench`, `docker://${imageRef(t, round)}`);
  const { seconds } = await timed(() => run('skopeo', args, { env: ctx.skopeoEnv, timeoutMs: 600_000 }));
  return { push_s: seconds };
}

async function phasePull(ctx, t, round, image) {
  const dest = join(ctx.tmp, `pull-${t.label.replace(/\W/g, '_')}-r${round}`);
  const args = ['copy', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false'];
  if (t.creds) args.push('--src-creds', `${t.creds.user}:${t.creds.pass}`);
  args.push(`docker://${imageRef(t, round)}`, `oci:${dest}:pulled`);
  try {
    const { seconds } = await timed(() => run('skopeo', args, { env: ctx.skopeoEnv, timeoutMs: 600_000 }));
    const index = JSON.parse(await readFile(join(dest, 'index.json'), 'utf8'));
    const got = index.manifests?.[0]?.digest;
    if (got !== image.manifestDigest) throw new Error(`pulled manifest ${got}, pushed ${image.manifestDigest}`);
    return { pull_s: seconds };
  } finally {
    await rm(dest, { recursive: true, force: true });
  }
}

function parseWrk(stdout) {
  const num = (re) => {
    const m = re.exec(stdout);
    return m ? Number(m[1]) : null;
  };
  const latency = /Latency\s+([\d.]+)(us|ms|s)\b/.exec(stdout);
  const scale = { us: 0.001, ms: 1, s: 1000 };
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    requests: num(/(\d+) requests in/),
    non2xx: num(/Non-2xx or 3xx responses:\s+(\d+)/) ?? 0,
    socketErrors: /Socket errors:/.test(stdout) ? stdout.match(/Socket errors:.*$/m)?.[0] : null,
    avgLatencyMs: latency ? Number(latency[1]) * scale[latency[2]] : null,
  };
}

async function phaseManifest(ctx, t, round, image) {
  const url = `${t.url}/v2/${t.repoPrefix}bench/app/manifests/${image.manifestDigest}`;
  const headers = { Accept: MANIFEST_ACCEPT, ...authHeaders(t) };
  const probe = await httpRequest(url, { headers });
  if (probe.status !== 200) throw new Error(`GET ${url} answered ${probe.status}: ${probe.body.toString('utf8').slice(0, 300)}`);
  const digest = 'sha256:' + createHash('sha256').update(probe.body).digest('hex');
  if (digest !== image.manifestDigest) throw new Error(`GET ${url} served bytes with digest ${digest}`);
  const script = join(ctx.tmp, `wrk-${t.label.replace(/\W/g, '_')}.lua`);
  const lua = ['wrk.method = "GET"', ...Object.entries(headers).map(([k, v]) => `wrk.headers[${luaString(k)}] = ${luaString(v)}`)];
  await writeFile(script, lua.join('\n') + '\n');
  try {
    const { stdout } = await run(
      'wrk',
      ['-t', String(ctx.opts.threads), '-c', String(ctx.opts.connections), '-d', `${ctx.opts.durationS}s`, '-s', script, url],
      { timeoutMs: (ctx.opts.durationS + 60) * 1000 },
    );
    const r = parseWrk(stdout);
    if (r.rps === null) throw new Error(`cannot parse wrk output:\n${stdout}`);
    if (r.non2xx) log(`WARNING ${t.label}: ${r.non2xx} non-2xx manifest responses`);
    return { manifest_get_rps: r.rps, manifest_get: r };
  } finally {
    await rm(script, { force: true });
  }
}

async function phaseHead(ctx, t, round, image) {
  const layer = image.layerDigests[0];
  const url = `${t.url}/v2/${t.repoPrefix}bench/app/blobs/${layer}`;
  const headers = authHeaders(t);
  const probe = await httpRequest(url, { method: 'HEAD', headers });
  if (probe.status !== 200) throw new Error(`HEAD ${url} answered ${probe.status}`);
  if (Number(probe.headers['content-length']) !== image.layerSizes[0]) {
    throw new Error(`HEAD ${url}: Content-Length ${probe.headers['content-length']}, blob has ${image.layerSizes[0]} bytes`);
  }
  const r = await httpLoad({
    url,
    method: 'HEAD',
    headers,
    connections: ctx.opts.connections,
    threads: ctx.opts.threads,
    durationMs: ctx.opts.durationS * 1000,
  });
  if (r.non2xx || r.errors) log(`WARNING ${t.label}: HEAD load had ${r.non2xx} non-2xx responses, ${r.errors} errors`);
  return { blob_head_rps: r.rps, blob_head: r };
}

async function uploadDigest(size, seed) {
  const h = createHash('sha256');
  for (const c of pseudoRandomChunks(size, seed)) h.update(c);
  return 'sha256:' + h.digest('hex');
}

async function phaseUpload(ctx, t, round, blob) {
  const repo = `${t.repoPrefix}bench/upload`;
  const auth = authHeaders(t);
  const post = await httpRequest(`${t.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: { ...auth, 'Content-Length': '0' } });
  if (post.status !== 202 || !post.headers.location) {
    throw new Error(`POST upload answered ${post.status}: ${post.body.toString('utf8').slice(0, 300)}`);
  }
  const putUrl = new URL(post.headers.location, t.url);
  putUrl.searchParams.set('digest', blob.digest);

  const baselineKiB = t.rssKiB();
  const hwmReset = t.resetPeakRss();
  let sampledMaxKiB = baselineKiB;
  const sampler = setInterval(() => {
    sampledMaxKiB = Math.max(sampledMaxKiB, t.rssKiB());
  }, 50);
  let put;
  let seconds;
  try {
    ({ seconds, value: put } = await timed(() =>
      httpRequest(putUrl, {
        method: 'PUT',
        headers: { ...auth, 'Content-Type': 'application/octet-stream', 'Content-Length': String(blob.size) },
        body: Readable.from(pseudoRandomChunks(blob.size, blob.seed), { objectMode: false }),
      }),
    ));
  } finally {
    clearInterval(sampler);
  }
  sampledMaxKiB = Math.max(sampledMaxKiB, t.rssKiB());
  const hwmKiB = hwmReset ? t.hwmKiB() : null;
  if (put.status !== 201) throw new Error(`PUT upload answered ${put.status}: ${put.body.toString('utf8').slice(0, 300)}`);
  const peakKiB = Math.max(sampledMaxKiB, hwmKiB ?? 0);
  // free the disk space again (drydock may answer otherwise: not an error here)
  await httpRequest(`${t.url}/v2/${repo}/blobs/${blob.digest}`, { method: 'DELETE', headers: auth }).catch(() => undefined);
  return {
    upload_peak_rss_mib: peakKiB / 1024,
    upload_rss_growth_mib: (peakKiB - baselineKiB) / 1024,
    upload_mib_s: blob.size / MiB / seconds,
    upload: { baselineKiB, sampledMaxKiB, hwmKiB, seconds, bytes: blob.size },
  };
}

// ---------------------------------------------------------------- report

const METRICS = [
  { key: 'push_s', label: 'push image (s)', better: 'lower', digits: 2 },
  { key: 'pull_s', label: 'pull image (s)', better: 'lower', digits: 2 },
  { key: 'manifest_get_rps', label: 'manifest GET by digest (req/s)', better: 'higher', digits: 0 },
  { key: 'blob_head_rps', label: 'blob HEAD (req/s)', better: 'higher', digits: 0 },
  { key: 'upload_peak_rss_mib', label: 'upload: peak RSS (MiB)', better: 'lower', digits: 1 },
  { key: 'upload_rss_growth_mib', label: 'upload: RSS growth (MiB)', better: 'lower', digits: 1 },
  { key: 'upload_mib_s', label: 'upload: throughput (MiB/s)', better: 'higher', digits: 0 },
  { key: 'idle_rss_mib', label: 'RSS after start (MiB)', better: 'lower', digits: 1 },
];

function summarize(labels, rows, opts) {
  const metrics = [];
  for (const m of METRICS) {
    const values = {};
    for (const l of labels) values[l] = median(rows.filter((r) => r.target === l).map((r) => r[m.key]));
    if (labels.every((l) => values[l] === null)) continue;
    const [a, b] = labels.map((l) => values[l]);
    const ratio = a && b !== null ? b / a : null;
    let better = null;
    if (a !== null && b !== null && a.toFixed(m.digits) !== b.toFixed(m.digits)) {
      better = (m.better === 'lower' ? b < a : b > a) ? labels[1] : labels[0];
    }
    metrics.push({ ...m, label: m.label.replace('image', `${opts.imageMiB} MiB image`).replace('upload:', `${opts.uploadMiB} MiB upload:`), values, ratio, betterTarget: better });
  }
  return metrics;
}

function printTable(labels, metrics, rounds) {
  const header = ['metric', `${labels[0]} (median)`, `${labels[1]} (median)`, `ratio ${labels[1]}/${labels[0]}`, 'better'];
  const rowsOut = metrics.map((m) => [
    m.label + (m.better === 'lower' ? ' ↓' : ' ↑'),
    ...labels.map((l) => (m.values[l] === null ? 'n/a' : m.values[l].toFixed(m.digits))),
    m.ratio === null ? 'n/a' : m.ratio.toFixed(2),
    m.betterTarget ?? '=',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rowsOut.map((r) => r[i].length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(`\n${rounds} round(s); ↓ lower is better, ↑ higher is better\n`);
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rowsOut) console.log(line(r));
  console.log('');
}

// ---------------------------------------------------------------- main

async function main() {
  const opts = options();
  const runId = `${Date.now().toString(36)}-${process.pid}`;
  const tmp = await mkdtemp(join(os.tmpdir(), 'drydock-bench-run-'));
  const ctx = { opts, tmp, skopeoEnv: skopeoEnv(tmp) };
  const started = [];
  let cleaning;
  const cleanup = () => {
    cleaning ??= Promise.allSettled(started.map((t) => t.stop())).then(() => rm(tmp, { recursive: true, force: true }));
    return cleaning;
  };
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, () => {
      log(`${sig}: stopping targets`);
      cleanup().finally(() => process.exit(130));
    });
  }

  const rows = [];
  const startedAt = new Date().toISOString();
  try {
    const seen = new Map();
    for (const name of opts.targets) {
      const n = (seen.get(name) ?? 0) + 1;
      seen.set(name, n);
      const label = n === 1 ? name : `${name}#${n}`;
      log(`starting ${label}`);
      const t = await startTarget(name, { cncfAuth: opts.cncfAuth });
      t.label = label;
      started.push(t);
      log(`${label} up at ${t.url} (pid ${t.pid}${t.creds ? `, user ${t.creds.user}` : ''})`);
    }
    await new Promise((r) => setTimeout(r, 500));
    const idle = Object.fromEntries(started.map((t) => [t.label, t.rssKiB() / 1024]));
    const layerMiB = opts.imageMiB / opts.layers;

    for (let round = 1; round <= opts.rounds; round++) {
      const order = round % 2 ? [...started] : [...started].reverse();
      const row = Object.fromEntries(started.map((t) => [t.label, { round, target: t.label, idle_rss_mib: idle[t.label] }]));
      const layoutDir = join(tmp, `layout-r${round}`);
      let image = null;
      if (opts.phases.has('push') || opts.phases.has('manifest') || opts.phases.has('head')) {
        log(`round ${round}: building a ${opts.imageMiB} MiB ${opts.layers}-layer image`);
        image = await buildImage(layoutDir, {
          tag: 'bench',
          layers: opts.layers,
          layerSize: Math.round(layerMiB * MiB),
          history: true,
          labels: { 'org.opencontainers.image.title': 'drydock-bench' },
          seed: `${runId}-r${round}`,
        });
      }
      const phase = async (name, fn) => {
        if (!opts.phases.has(name)) return;
        for (const t of order) {
          log(`round ${round}: ${name} ${t.label}`);
          Object.assign(row[t.label], await fn(t));
        }
      };
      if (image && !opts.phases.has('push')) {
        // manifest/head without the push phase: still upload the image, untimed
        for (const t of order) await phasePush(ctx, t, round, layoutDir);
      }
      await phase('push', (t) => phasePush(ctx, t, round, layoutDir));
      await phase('pull', (t) => phasePull(ctx, t, round, image));
      await phase('manifest', (t) => phaseManifest(ctx, t, round, image));
      await phase('head', (t) => phaseHead(ctx, t, round, image));
      if (opts.phases.has('upload')) {
        const blob = { size: opts.uploadMiB * MiB, seed: `${runId}-upload-r${round}` };
        log(`round ${round}: hashing the ${opts.uploadMiB} MiB upload blob`);
        blob.digest = await uploadDigest(blob.size, blob.seed);
        await phase('upload', (t) => phaseUpload(ctx, t, round, blob));
      }
      await rm(layoutDir, { recursive: true, force: true });
      rows.push(...Object.values(row));
    }

    const labels = started.map((t) => t.label);
    const metrics = summarize(labels, rows, opts);
    printTable(labels, metrics, opts.rounds);
    const cpus = os.cpus();
    const results = {
      startedAt,
      finishedAt: new Date().toISOString(),
      machine: {
        cpus: cpus.length,
        cpuModel: cpus[0]?.model ?? 'unknown',
        memGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
        kernel: os.release(),
        node: process.version,
        loadavg: os.loadavg(),
      },
      tools: {
        skopeo: toolVersion('skopeo', ['--version']),
        wrk: toolVersion('wrk', ['--version']),
        registry: toolVersion('/usr/bin/docker-registry', ['--version']),
      },
      options: { ...opts, phases: [...opts.phases] },
      targets: started.map((t) => ({ label: t.label, name: t.name, description: knownTargets[t.name].description, url: t.url, auth: Boolean(t.creds) })),
      summary: metrics.map(({ key, label, better, values, ratio, betterTarget }) => ({ key, label, better, medians: values, ratio, betterTarget })),
      rounds: rows,
    };
    await mkdir(dirname(opts.out), { recursive: true });
    await writeFile(opts.out, JSON.stringify(results, null, 2) + '\n');
    log(`results written to ${opts.out}`);
  } finally {
    await cleanup();
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack ?? e.message : e);
  process.exitCode = 1;
});
