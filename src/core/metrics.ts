import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * drydock's metrics, on a private registry per process (or per test) so two
 * apps in one process never share counters.
 */
export interface Metrics {
  readonly registry: Registry;
  readonly httpRequests: Counter<'route' | 'method' | 'status'>;
  readonly httpDuration: Histogram<'route' | 'method' | 'status'>;
  readonly bytesIn: Counter<'route'>;
  readonly bytesOut: Counter<'route'>;
  readonly uploadDuration: Histogram<'outcome'>;
  readonly storageDuration: Histogram<'driver' | 'action' | 'outcome'>;
  /** Requests drydock made to remote repositories' upstreams (token and redirect hops included); status `error` = no response. */
  readonly upstreamRequests: Counter<'repository' | 'method' | 'status'>;
  /** The upstream's last `RateLimit-Remaining` (Docker Hub's pull quota), per remote repository. */
  readonly upstreamRateLimitRemaining: Gauge<'repository'>;
  /** Garbage collection progress: counters grow batch by batch during a run. */
  readonly gcBlobsExamined: Counter<'dry_run'>;
  readonly gcBlobsDeleted: Counter<'dry_run'>;
  readonly gcBytesFreed: Counter<'dry_run'>;
  readonly gcManifestsDeleted: Counter<'dry_run'>;
  readonly gcDuration: Gauge<'dry_run'>;
  readonly gcLastRun: Gauge<'dry_run'>;
}

export function createMetrics(opts: { defaults?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (opts.defaults) collectDefaultMetrics({ register: registry, prefix: 'drydock_' });
  return {
    registry,
    httpRequests: new Counter({
      name: 'drydock_http_requests_total',
      help: 'HTTP requests by route template, method and status',
      labelNames: ['route', 'method', 'status'],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'drydock_http_request_duration_seconds',
      help: 'HTTP request latency by route template, method and status',
      labelNames: ['route', 'method', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    bytesIn: new Counter({
      name: 'drydock_http_request_bytes_total',
      help: 'Request bytes received (request line, headers and body), by route template',
      labelNames: ['route'],
      registers: [registry],
    }),
    bytesOut: new Counter({
      name: 'drydock_http_response_bytes_total',
      help: 'Response bytes sent (status line, headers and body), by route template',
      labelNames: ['route'],
      registers: [registry],
    }),
    uploadDuration: new Histogram({
      name: 'drydock_upload_duration_seconds',
      help: 'Time from upload session start to completion or cancellation',
      labelNames: ['outcome'],
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800],
      registers: [registry],
    }),
    storageDuration: new Histogram({
      name: 'drydock_storage_operation_duration_seconds',
      help: 'Blob storage driver operation latency',
      labelNames: ['driver', 'action', 'outcome'],
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers: [registry],
    }),
    upstreamRequests: new Counter({
      name: 'drydock_upstream_requests_total',
      help: 'HTTP requests to remote repository upstreams, by repository, method and status (error = no response)',
      labelNames: ['repository', 'method', 'status'],
      registers: [registry],
    }),
    upstreamRateLimitRemaining: new Gauge({
      name: 'drydock_upstream_ratelimit_remaining',
      help: "The upstream's last RateLimit-Remaining header value, by remote repository",
      labelNames: ['repository'],
      registers: [registry],
    }),
    gcBlobsExamined: new Counter({
      name: 'drydock_gc_blobs_examined_total',
      help: 'Blobs garbage collection examined (dry_run: whether it only reported)',
      labelNames: ['dry_run'],
      registers: [registry],
    }),
    gcBlobsDeleted: new Counter({
      name: 'drydock_gc_blobs_deleted_total',
      help: 'Blobs garbage collection deleted (or, in a dry run, would have)',
      labelNames: ['dry_run'],
      registers: [registry],
    }),
    gcBytesFreed: new Counter({
      name: 'drydock_gc_bytes_freed_total',
      help: 'Bytes of blobs garbage collection deleted (or would have)',
      labelNames: ['dry_run'],
      registers: [registry],
    }),
    gcManifestsDeleted: new Counter({
      name: 'drydock_gc_manifests_deleted_total',
      help: 'Untagged, unreachable manifests past retention that garbage collection deleted (or would have)',
      labelNames: ['dry_run'],
      registers: [registry],
    }),
    gcDuration: new Gauge({
      name: 'drydock_gc_last_duration_seconds',
      help: 'Duration of the last garbage collection run',
      labelNames: ['dry_run'],
      registers: [registry],
    }),
    gcLastRun: new Gauge({
      name: 'drydock_gc_last_run_timestamp_seconds',
      help: 'When the last garbage collection run finished (Unix time)',
      labelNames: ['dry_run'],
      registers: [registry],
    }),
  };
}
