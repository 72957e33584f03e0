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

export type RouteMethod =
  | { scope: 'registry'; action: Action | 'authenticated'; handler: V2Handler }
  | { scope: 'repository'; action: Action; handler: V2RepoHandler };
