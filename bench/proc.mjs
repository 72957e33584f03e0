// Process and network utilities shared by the benchmark harness and the test
// helpers (test/helpers/*.ts import this file; types in proc.d.mts).
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/** One plain-HTTP GET; resolves with the status code (body discarded). */
function httpStatus(url, timeoutMs) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/**
 * Polls `url` until it answers with one of `statuses`. Fails early when
 * `child` exits, and after `timeoutMs`.
 */
export async function waitForHttp(url, { statuses = [200, 401], timeoutMs = 15000, child, describe } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  for (;;) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) {
      throw new Error(`${describe ?? 'process'} exited (${child.exitCode ?? child.signalCode}) before ${url} answered`);
    }
    try {
      const status = await httpStatus(url, 1000);
      if (statuses.includes(status)) return status;
      last = `HTTP ${status}`;
    } catch (e) {
      last = e instanceof Error ? e.message : String(e);
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer ${statuses.join('/')} within ${timeoutMs} ms (last: ${last})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A `kB` field of /proc/<pid>/status (VmRSS, VmHWM, ...); 0 when the process is gone. */
export function procStatusKiB(pid, field) {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Resets VmHWM of `pid` to its current RSS (Linux: write 5 to clear_refs). */
export function resetPeakRss(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the child has exited. */
export function stopChild(child, graceMs = 5000) {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

const SECRET_FLAGS = new Set(['--creds', '--src-creds', '--dest-creds', '--password', '-p']);

/** The command line for messages, with credentials masked. */
export function describeCommand(cmd, args) {
  const shown = args.map((a, i) => {
    if (i > 0 && SECRET_FLAGS.has(args[i - 1])) return '***';
    const eq = /^(--(?:src-|dest-)?creds|--password)=/.exec(a);
    return eq ? `${eq[1]}=***` : a;
  });
  return [cmd, ...shown].join(' ');
}

/**
 * Runs a command to completion. Rejects on a non-zero exit, a signal or the
 * timeout, with a message that carries the command line and its stderr.
 */
export function run(cmd, args, { timeoutMs = 120000, env, input, cwd } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: env ?? process.env, cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (c) => out.push(c));
    child.stderr.on('data', (c) => err.push(c));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`${describeCommand(cmd, args)}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdoutBuffer = Buffer.concat(out);
      const stderr = Buffer.concat(err).toString('utf8');
      if (code === 0) {
        resolve({ stdout: stdoutBuffer.toString('utf8'), stdoutBuffer, stderr });
        return;
      }
      const why = timedOut ? `timed out after ${timeoutMs} ms` : signal ? `killed by ${signal}` : `exit code ${code}`;
      reject(new Error(`${describeCommand(cmd, args)}: ${why}\n${stderr.trim()}`));
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });
}
