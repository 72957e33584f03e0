/**
 * Operator scale benchmark (`npm run bench:operator`): the `drydock operator`
 * process against the Kubernetes API server emulator and a PostgreSQL
 * database. Declares N DockerRepositories at once and times until every one
 * reports Ready; starts M Pods running distinct digests and times until all are
 * protected; prints the operator's resident memory along the way. Figures, not
 * assertions: a benchmark never fails on a number.
 *
 *   BENCH_REPOS=500 BENCH_PODS=2000 npm run bench:operator
 */
import { afterAll, it } from '@jest/globals';
import pg from 'pg';
import { startKubeApiServer, type KubeApiServer } from '../test/helpers/kube-apiserver.js';
import { createTestDatabase, type TestDatabase } from '../test/helpers/postgres.js';
import { startDrydockOperator, type OperatorProcess } from '../test/helpers/drydock-process.js';
import { procStatusKiB } from './proc.mjs';

const REPOS = Number(process.env.BENCH_REPOS ?? 300);
const PODS = Number(process.env.BENCH_PODS ?? 1000);

let kube: KubeApiServer | undefined;
let db: TestDatabase | undefined;
let op: OperatorProcess | undefined;

afterAll(async () => {
  await op?.stop();
  await kube?.close();
  await db?.drop();
});

function mib(pid: number, field: 'VmRSS' | 'VmHWM'): string {
  return (procStatusKiB(pid, field) / 1024).toFixed(0);
}

async function until(what: string, done: () => boolean | Promise<boolean>, timeoutMs = 600_000): Promise<number> {
  const start = performance.now();
  while (!(await done())) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return performance.now() - start;
}

it(`operator: ${REPOS} DockerRepositories, ${PODS} Pods`, async () => {
  kube = await startKubeApiServer({ crdFiles: ['crds/dockerrepositories.yaml', 'crds/promotions.yaml'] });
  for (const name of ['drydock', 'teams', 'apps']) kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  db = await createTestDatabase();
  op = await startDrydockOperator({ kubeconfig: kube.kubeconfigPath, databaseUrl: db.url, env: { DRYDOCK_BASE_URL: 'https://registry.example.com', DRYDOCK_LOG_LEVEL: 'warn' } });
  const pid = op.child.pid!;
  await until('leader', async () => ((await (await fetch(`${op!.url}/healthz`)).json()) as { synced: boolean }).synced);
  const idle = mib(pid, 'VmRSS');

  for (let i = 0; i < REPOS; i++) {
    kube.create({ apiVersion: 'drydock.dev/v1alpha1', kind: 'DockerRepository', metadata: { name: `repo-${i}`, namespace: 'teams' }, spec: { type: 'local', local: { maxUniqueTags: 10 } } });
  }
  const readyMs = await until('all Ready', () =>
    kube!
      .list({ apiVersion: 'drydock.dev/v1alpha1', kind: 'DockerRepository', namespace: 'teams' })
      .every((r) => ((r.status as { conditions?: Array<{ type: string; status: string }> } | undefined)?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')),
  );
  const afterRepos = mib(pid, 'VmRSS');

  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  for (let i = 0; i < PODS; i++) {
    const digest = `sha256:${i.toString(16).padStart(64, '0')}`;
    kube.create({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `pod-${i}`, namespace: 'apps' }, spec: { containers: [{ name: 'c', image: `registry.example.com/teams/app:${i}` }] } });
    kube.patchStatus({ apiVersion: 'v1', kind: 'Pod', namespace: 'apps', name: `pod-${i}` }, { phase: 'Running', containerStatuses: [{ name: 'c', imageID: `registry.example.com/teams/app@${digest}` }] });
  }
  const protectMs = await until('all protected', async () => Number((await client.query('SELECT count(*) AS n FROM protected_digests')).rows[0].n) === PODS);
  await client.end();

  const metrics = await (await fetch(`${op.url}/metrics`)).text();
  const count = /drydock_operator_reconcile_duration_seconds_count\{kind="DockerRepository"\} (\d+)/.exec(metrics)?.[1];
  const sum = /drydock_operator_reconcile_duration_seconds_sum\{kind="DockerRepository"\} ([\d.e-]+)/.exec(metrics)?.[1];
  const lines = [
    `operator bench (${REPOS} DockerRepositories, ${PODS} Pods)`,
    `  all DockerRepositories Ready: ${(readyMs / 1000).toFixed(2)} s (${((REPOS / readyMs) * 1000).toFixed(0)} resources/s)`,
    `  reconciles: ${count}, mean ${((Number(sum) / Number(count)) * 1000).toFixed(1)} ms`,
    `  all Pod digests protected: ${(protectMs / 1000).toFixed(2)} s`,
    `  operator RSS: idle ${idle} MiB, after repositories ${afterRepos} MiB, after pods ${mib(pid, 'VmRSS')} MiB, peak ${mib(pid, 'VmHWM')} MiB`,
  ];
  process.stdout.write(`\n${lines.join('\n')}\n`);
}, 900_000);
