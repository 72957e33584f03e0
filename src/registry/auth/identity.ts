/** Who is making a request. Every request carries one, `anonymous` included. */
export interface Identity {
  kind: 'anonymous' | 'user';
  name: string;
  admin: boolean;
  /** Groups the user belongs to. */
  groups: readonly string[];
  /**
   * Set when the request authenticated with an access token scoped to some of
   * the user's groups: only those groups' grants apply (never the user's own).
   */
  restrictToGroups?: readonly string[];
  /** Set when the request carries a registry (Docker) token: the access it was granted. */
  tokenAccess?: readonly TokenAccess[];
}

/** One entry of a registry token's `access` claim (Docker token spec). */
export interface TokenAccess {
  type: string;
  name: string;
  actions: string[];
}

export const ANONYMOUS: Identity = Object.freeze({ kind: 'anonymous', name: 'anonymous', admin: false, groups: Object.freeze([]) });

/** Artifactory's permission actions; every route declares the one it needs. */
export const ACTIONS = ['read', 'annotate', 'write', 'delete', 'manage'] as const;
export type Action = (typeof ACTIONS)[number];

/**
 * What an action applies to: a repository and a path in it (`<image>` or
 * `<image>/<tag>`), or the whole system when `repoKey` is absent (admin only).
 */
export interface Resource {
  repoKey?: string;
  image?: string;
  /** A tag or digest within the image, when the operation names one. */
  leaf?: string;
  /** True: allowed when *anything* under the path is readable (listing images). */
  partial?: boolean;
}
