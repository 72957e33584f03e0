import type { RepositoryConfig } from '../../core/config/repository.js';

/** How a client addresses the repository (SPEC §3). */
export type AccessMethod = 'repositoryPath' | 'subdomain' | 'port';

export interface SetMeUp {
  repository: string;
  rclass: RepositoryConfig['rclass'];
  method: AccessMethod;
  /** What `docker login` takes. */
  registry: string;
  /** What goes before `<image>:<tag>`. */
  imagePrefix: string;
  /** True when the registry speaks plain HTTP (clients need their insecure flags). */
  insecure: boolean;
  docker: { login: string; tag: string; push: string; pull: string; buildx: string };
  podman: { login: string; push: string; pull: string };
  skopeo: { login: string; copy: string; inspect: string };
  /** For remote and virtual repositories: containerd's hosts.toml mirroring the upstream through drydock. */
  containerd?: { path: string; hostsToml: string };
}

/**
 * The Set Me Up commands for one repository, for the host the client used
 * (`baseUrl` = scheme://host[:port] as the client sees drydock).
 */
export function setMeUp(
  config: RepositoryConfig,
  opts: { baseUrl: string; subdomainOf?: string; user?: string },
): SetMeUp {
  const base = new URL(opts.baseUrl);
  const insecure = base.protocol === 'http:';
  let method: AccessMethod = 'repositoryPath';
  let registry = base.host;
  let imagePrefix = `${base.host}/${config.key}`;
  if (config.port) {
    method = 'port';
    registry = `${base.hostname}:${config.port}`;
    imagePrefix = registry;
  } else if (opts.subdomainOf) {
    method = 'subdomain';
    registry = `${config.key}.${opts.subdomainOf}${base.port ? `:${base.port}` : ''}`;
    imagePrefix = registry;
  }
  const user = opts.user ?? '<user>';
  const image = `${imagePrefix}/<image>:<tag>`;
  const tls = insecure ? ' --tls-verify=false' : '';
  const out: SetMeUp = {
    repository: config.key,
    rclass: config.rclass,
    method,
    registry,
    imagePrefix,
    insecure,
    docker: {
      login: `docker login ${registry} -u ${user}`,
      tag: `docker tag <image>:<tag> ${image}`,
      push: `docker push ${image}`,
      pull: `docker pull ${image}`,
      buildx: `docker buildx build --platform linux/amd64,linux/arm64 -t ${image} --push .`,
    },
    podman: {
      login: `podman login${tls} ${registry} -u ${user}`,
      push: `podman push${tls} <image>:<tag> ${image}`,
      pull: `podman pull${tls} ${image}`,
    },
    skopeo: {
      login: `skopeo login${tls} ${registry} -u ${user}`,
      copy: `skopeo copy --all${insecure ? ' --dest-tls-verify=false' : ''} docker://docker.io/library/alpine:latest docker://${imagePrefix}/alpine:latest`,
      inspect: `skopeo inspect${tls} docker://${image}`,
    },
  };
  if (config.rclass === 'remote' || config.rclass === 'virtual') {
    const upstream = config.rclass === 'remote' ? config.url : 'https://registry-1.docker.io';
    const upstreamHost = hostOf(upstream);
    const ns = upstreamHost === 'registry-1.docker.io' ? 'docker.io' : upstreamHost;
    // A remote answers containerd's mirror requests by `?ns=` at the root; a virtual under
    // the repository path method is reached through its own path (override_path).
    const overridePath = config.rclass === 'virtual' && method === 'repositoryPath';
    const mirror =
      config.rclass === 'remote' ? `${base.protocol}//${base.host}` : overridePath ? `${base.protocol}//${base.host}/v2/${config.key}` : `${base.protocol}//${registry}`;
    out.containerd = {
      path: `/etc/containerd/certs.d/${ns}/hosts.toml`,
      hostsToml: [
        `server = "${upstream.replace(/\/+$/, '')}"`,
        '',
        `[host."${mirror}"]`,
        '  capabilities = ["pull", "resolve"]',
        ...(overridePath ? ['  override_path = true'] : []),
        '',
      ].join('\n'),
    };
  }
  return out;
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}
