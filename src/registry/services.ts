import type { Config } from '../core/config/index.js';
import type { Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import type { BlobDriver } from '../storage/driver.js';
import type { MetadataStore } from '../metadata/store.js';
import { Authenticator } from './auth/authenticator.js';
import { Authorizer } from './auth/authorizer.js';
import { LoginThrottle } from './auth/login-throttle.js';
import type { TokenSigner } from './auth/tokens.js';
import type { SecretBox } from '../core/secrets.js';
import { HttpUpstream } from './repos/upstream-client.js';
import { RepositoryResolver } from './repos/resolver.js';
import { AuditLog } from './service/audit.js';
import { BlobService } from './service/blobs.js';
import { ManifestService } from './service/manifests.js';
import { PromotionService } from './service/promotion.js';
import { RepositoryService } from './service/repositories.js';
import { SecurityService } from './service/security.js';
import { UploadService } from './service/uploads.js';

export interface RegistryDeps {
  config: Config;
  store: MetadataStore;
  driver: BlobDriver;
  log: Logger;
  metrics: Metrics;
  signer: TokenSigner;
  /** Encrypts upstream credentials at rest. */
  secrets: SecretBox;
}

/** Everything the HTTP layer calls, built once from the ports. */
export interface Services extends RegistryDeps {
  blobs: BlobService;
  manifests: ManifestService;
  uploads: UploadService;
  repositories: RepositoryService;
  resolver: RepositoryResolver;
  authenticator: Authenticator;
  authorizer: Authorizer;
  audit: AuditLog;
  security: SecurityService;
  promotion: PromotionService;
}

/** The channel on which processes sharing a database announce configuration changes. */
export const CHANGES_CHANNEL = 'drydock_changes';

export type Change = { kind: 'repository'; key: string } | { kind: 'security' };

/** Drops what a change announced by another process (or this one) makes stale. */
export function applyChange(services: Services, payload: string): void {
  let change: Change;
  try {
    change = JSON.parse(payload) as Change;
  } catch {
    return;
  }
  if (change.kind === 'repository' && typeof change.key === 'string') {
    services.resolver.invalidate(change.key);
    services.authorizer.invalidate();
  } else if (change.kind === 'security') {
    services.authorizer.invalidate();
    services.authenticator.forget();
  }
}

export function createServices(deps: RegistryDeps): Services {
  // With the embedded database this process is the only writer, so its caches
  // are exact; with a shared server other pods write too, so entries live briefly.
  const cacheTtlMs = deps.config.database.url ? 1000 : 5 * 60_000;
  const blobs = new BlobService({ store: deps.store, driver: deps.driver, cacheTtlMs });
  const manifests = new ManifestService({ store: deps.store, cacheTtlMs });
  const audit = new AuditLog({ store: deps.store, log: deps.log });
  const authorizer = new Authorizer({ store: deps.store, anonymousAccess: deps.config.auth.anonymousAccess, cacheTtlMs, log: deps.log });
  const uploads = new UploadService({ store: deps.store, driver: deps.driver, log: deps.log, metrics: deps.metrics });
  const resolver = new RepositoryResolver({
    store: deps.store,
    blobs,
    manifests,
    uploads,
    authorizer,
    log: deps.log,
    cacheTtlMs,
    upstreamFor: (config) =>
      new HttpUpstream({
        repository: config.key,
        config: { ...config, password: config.password && deps.secrets.isEncrypted(config.password) ? deps.secrets.decrypt(config.password) : config.password },
        metrics: deps.metrics,
        log: deps.log.child({ repo: config.key }),
      }),
  });
  const repositories = new RepositoryService({
    store: deps.store,
    log: deps.log,
    secrets: deps.secrets,
    onChange: (key) => {
      resolver.invalidate(key);
      authorizer.invalidate();
      broadcast({ kind: 'repository', key });
    },
  });
  const authenticator = new Authenticator({ store: deps.store, signer: deps.signer, throttle: new LoginThrottle({
      perUser: deps.config.auth.loginThrottle.perUser,
      perAddress: deps.config.auth.loginThrottle.perAddress,
      windowMs: deps.config.auth.loginThrottle.windowSecs * 1000,
    }), audit });
  const security = new SecurityService({
    store: deps.store,
    audit,
    signer: deps.signer,
    log: deps.log,
    // Rights and memberships are cached with verified credentials: a change must show on the next request.
    onChange: () => {
      authorizer.invalidate();
      authenticator.forget();
      broadcast({ kind: 'security' });
    },
  });
  const promotion = new PromotionService({
    store: deps.store,
    authorizer,
    audit,
    log: deps.log,
    // Promotions add and remove manifests and tags: cached ones must not outlive them.
    onChange: (key) => {
      resolver.invalidate(key);
      broadcast({ kind: 'repository', key });
    },
  });

  /** Other processes on the same database drop the same cache entries (see `applyChange`). */
  function broadcast(change: Change): void {
    deps.store.notify(CHANGES_CHANNEL, JSON.stringify(change)).catch((err: unknown) => deps.log.warn({ err }, 'could not announce a change'));
  }

  return { ...deps, blobs, manifests, uploads, repositories, resolver, authenticator, authorizer, audit, security, promotion };
}
