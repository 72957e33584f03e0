import { RegistryError } from '../../../core/errors.js';
import { isValidImageName, isValidRepoKey } from '../../../core/oci/reference.js';
import type { Action, Identity, TokenAccess } from '../../auth/identity.js';
import { parseScopes, type Scope } from '../../auth/scope.js';
import { REGISTRY_SERVICE } from '../../auth/tokens.js';
import type { Services } from '../../services.js';
import type { V2Call } from './call.js';
import { queryList } from './manifests.js';

/** Docker token actions → the permission each needs. */
const NEEDS: Record<string, Action[]> = { pull: ['read'], push: ['write'], delete: ['delete'], '*': ['read', 'write', 'delete'] };

/**
 * GET /v2/token (Docker token spec): Basic credentials, or none for the
 * anonymous user when anonymous access is on; answers a signed JWT whose access
 * claim is the intersection of the requested scopes and the caller's rights.
 */
export async function issueToken({ req, res, services }: V2Call): Promise<void> {
  const service = typeof req.query.service === 'string' ? req.query.service : undefined;
  if (service !== undefined && service !== REGISTRY_SERVICE) {
    throw new RegistryError('DENIED', `this token service is '${REGISTRY_SERVICE}', not '${service}'`);
  }
  let identity: Identity;
  try {
    identity = await services.authenticator.authenticate(req.headers.authorization, { clientIp: req.ip, bearer: false });
  } catch (e) {
    if (e instanceof RegistryError && e.code === 'UNAUTHORIZED') {
      throw new RegistryError('UNAUTHORIZED', e.message, undefined, { 'WWW-Authenticate': 'Basic realm="drydock"' });
    }
    throw e;
  }
  if (identity.kind === 'anonymous' && !services.config.auth.anonymousAccess) {
    throw new RegistryError('UNAUTHORIZED', 'credentials are required', undefined, { 'WWW-Authenticate': 'Basic realm="drydock"' });
  }
  const account = typeof req.query.account === 'string' ? req.query.account : undefined;
  if (account && identity.kind === 'user' && account !== identity.name) {
    throw new RegistryError('UNAUTHORIZED', `account '${account}' does not match the credentials`, undefined, {
      'WWW-Authenticate': 'Basic realm="drydock"',
    });
  }
  const access = await grant(services, identity, parseScopes(queryList(req.query.scope)));
  const ttl = services.config.auth.tokenTtlSecs;
  const issuedAt = new Date();
  const token = await services.signer.registryToken({ subject: identity.name, access }, ttl, issuedAt);
  await services.audit.record({
    actor: identity.name,
    action: 'token.issue',
    outcome: 'success',
    clientIp: req.ip,
    details: { access: access.map((a) => `${a.type}:${a.name}:${a.actions.join(',')}`) },
  });
  res.status(200).json({ token, access_token: token, expires_in: ttl, issued_at: issuedAt.toISOString() });
}

/** Of the requested scopes, the actions the identity holds (scopes it holds nothing of are left out). */
export async function grant(services: Services, identity: Identity, scopes: Scope[]): Promise<TokenAccess[]> {
  const out: TokenAccess[] = [];
  for (const s of scopes) {
    if (s.type === 'registry' && s.name === 'catalog') {
      if (s.actions.includes('*')) out.push({ type: 'registry', name: 'catalog', actions: ['*'] });
      continue;
    }
    if (s.type !== 'repository') continue;
    const slash = s.name.indexOf('/');
    const repoKey = s.name.slice(0, slash);
    const image = s.name.slice(slash + 1);
    if (slash <= 0 || !isValidRepoKey(repoKey) || !isValidImageName(image)) continue;
    const actions: string[] = [];
    for (const a of s.actions) {
      const needs = NEEDS[a];
      if (!needs) continue;
      let ok = true;
      for (const n of needs) ok &&= await services.authorizer.can(identity, n, { repoKey, image, partial: true });
      if (ok) actions.push(a);
    }
    if (actions.length) out.push({ type: 'repository', name: s.name, actions });
  }
  return out;
}
