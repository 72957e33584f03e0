/**
 * The real `kubectl` (1.32, on PATH; CI installs it) against the Kubernetes API
 * server emulator (./kube-apiserver.ts). Every call gets `--kubeconfig` of that
 * server and a discovery cache beside the kubeconfig, so the user's
 * ~/.kube is never read or written and servers never share cached discovery.
 */
import { spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';

export interface KubectlTarget {
  kubeconfigPath: string;
}

export interface KubectlOptions {
  /** Written to kubectl's stdin (for `-f -`). */
  input?: string;
  /** Default 30 s; the process is killed after it. */
  timeoutMs?: number;
  cwd?: string;
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

let checked: string | undefined;

/**
 * Throws a clear error when kubectl is missing, so its tests fail loudly
 * rather than being skipped. Returns `kubectl version --client` output.
 */
export function requireKubectl(): string {
  if (checked !== undefined) return checked;
  const r = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8', timeout: 15_000 });
  if (r.error || r.status !== 0) {
    const why = r.error ? r.error.message : r.stderr;
    throw new Error(`kubectl is required by the Kubernetes emulator tests (the real binary, 1.32, on PATH) but could not be run: ${why}`);
  }
  checked = r.stdout.trim();
  return checked;
}

/** Runs `kubectl ...args` against `server`; resolves with the exit code and output, never rejects on a non-zero exit. */
export function kubectl(server: KubectlTarget, args: string[], opts: KubectlOptions = {}): Promise<KubectlResult> {
  requireKubectl();
  const fullArgs = ['--kubeconfig', server.kubeconfigPath, '--cache-dir', join(dirname(server.kubeconfigPath), 'kubectl-cache'), ...args];
  return new Promise((resolve, reject) => {
    // KUBECONFIG is dropped so nothing from the environment is merged in.
    const { KUBECONFIG: _ignored, ...env } = process.env;
    const child = spawn('kubectl', fullArgs, { cwd: opts.cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`kubectl ${args.join(' ')} timed out after ${timeoutMs} ms; stderr: ${Buffer.concat(err).toString()}`));
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
    child.stdin.end(opts.input ?? '');
  });
}
