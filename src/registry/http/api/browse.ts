import type { Request, Response } from 'express';
import { RegistryError } from '../../../core/errors.js';
import { assertImageName } from '../../../core/oci/reference.js';
import type { RepositoryBackend } from '../../repos/types.js';
import { tagInfo } from '../../service/browse.js';
import { setMeUp } from '../../service/setmeup.js';
import type { Services } from '../../services.js';
import { httpContext } from '../context.js';
import { authorize } from '../middleware/auth.js';
import { baseUrl } from './urls.js';

/** GET /api/docker/<key>/info/<image>/<tag or digest>: Tag Info (sizes, labels, platforms, history). */
export function getTagInfo(services: Services) {
  return async (req: Request, res: Response): Promise<void> => {
    const key = String(req.params.key);
    const segments = ([] as string[]).concat(req.params.rest as unknown as string[]);
    const reference = segments.pop();
    const image = segments.join('/');
    if (!reference || !image) throw new RegistryError('BAD_REQUEST', 'the path is /api/docker/<repoKey>/info/<image>/<tag or digest>');
    assertImageName(image);
    const { identity, log } = httpContext(res);
    await authorize(services, identity, 'read', { repoKey: key, image, leaf: reference.includes(':') ? undefined : reference });
    const repo = await repository(services, key);
    const base = baseUrl(req, services);
    const prefix = req.path.startsWith('/artifactory/') ? '/artifactory' : '';
    res.json(await tagInfo(repo, image, reference, { identity, log }, (d) => `${base}${prefix}/api/docker/${key}/info/${image}/${d}`));
  };
}

/** GET /api/docker/<key>/images: every image the caller may read, with tag and manifest counts and bytes held. */
export function listImages(services: Services) {
  return async (req: Request, res: Response): Promise<void> => {
    const key = String(req.params.key);
    const { identity } = httpContext(res);
    await authorize(services, identity, 'read', { repoKey: key });
    await repository(services, key);
    const images = [];
    for (const s of await services.store.manifests.imageStats(key)) {
      if (await services.authorizer.can(identity, 'read', { repoKey: key, image: s.image, partial: true })) {
        images.push({ name: s.image, tags: s.tags, manifests: s.manifests, size: s.size });
      }
    }
    res.json({ repository: key, images });
  };
}

/** GET /api/docker/<key>/setmeup: login, push and pull commands for this repository and the host the client used. */
export function getSetMeUp(services: Services) {
  return async (req: Request, res: Response): Promise<void> => {
    const key = String(req.params.key);
    const { identity } = httpContext(res);
    await authorize(services, identity, 'read', { repoKey: key });
    const repo = await repository(services, key);
    res.json(
      setMeUp(repo.config, {
        baseUrl: baseUrl(req, services),
        subdomainOf: services.config.server.subdomainOf,
        user: identity.kind === 'user' ? identity.name : undefined,
      }),
    );
  };
}

async function repository(services: Services, key: string): Promise<RepositoryBackend> {
  const repo = await services.resolver.get(key);
  if (!repo) throw new RegistryError('NOT_FOUND', await services.resolver.whyMissing(key));
  return repo;
}
