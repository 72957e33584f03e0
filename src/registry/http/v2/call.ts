import type { Request, Response } from 'express';
import type { Action } from '../../auth/identity.js';
import type { RepositoryBackend, RequestContext } from '../../repos/types.js';
import type { Services } from '../../services.js';
import type { ResolvedName, V2Address } from './addressing.js';

/** Everything a registry API handler needs, resolved and authorized by the dispatcher. */
export interface V2Call {
  req: Request;
  res: Response;
  services: Services;
  ctx: RequestContext;
  addr: V2Address;
  /** Named groups of the route pattern (`reference`, `digest`, `uuid`). */
  params: Record<string, string>;
}

/** A call on a route that names a repository and image. */
export interface V2RepoCall extends V2Call {
  name: ResolvedName;
  repo: RepositoryBackend;
}

export type V2Handler = (call: V2Call) => Promise<void>;
export type V2RepoHandler = (call: V2RepoCall) => Promise<void>;

export type HttpMethod = 'GET' | 'HEAD' | 'PUT' | 'PATCH' | 'POST' | 'DELETE';

export interface V2Route {
  /** Template used as the metrics label and in docs. */
  template: string;
  /** Matched against the path after the `/v2/` prefix. */
  pattern: RegExp;
  methods: Partial<Record<HttpMethod, RouteMethod>>;
}

/**
 * `public`: no authentication (the handler checks credentials itself);
 * `authenticated`: any identity the configuration admits (the handler filters
 * by rights); an Action: checked on the repository and image the URL names.
 * `audit` names the event recorded in the audit log when the request succeeds
 * (and, as `denied`, when it is refused).
 */
export type RouteMethod =
  | { scope: 'registry'; action: 'public' | 'authenticated'; handler: V2Handler; tokenScope?: string }
  | { scope: 'repository'; action: Action; handler: V2RepoHandler; audit?: string; leaf?: 'reference' };
