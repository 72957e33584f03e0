/** Who is making a request. Every request carries one, `anonymous` included. */
export interface Identity {
  kind: 'anonymous' | 'user';
  name: string;
  admin: boolean;
}

export const ANONYMOUS: Identity = Object.freeze({ kind: 'anonymous', name: 'anonymous', admin: false });

/** Artifactory's permission actions; every route declares the one it needs. */
export type Action = 'read' | 'annotate' | 'write' | 'delete' | 'manage';

/** What an action applies to: a repository (and an image in it), or the whole system when absent. */
export interface Resource {
  repoKey?: string;
  image?: string;
}
