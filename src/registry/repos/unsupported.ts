import { RegistryError } from '../../core/errors.js';
import type { RepositoryConfig } from '../../core/config/repository.js';
import type { RepositoryBackend } from './types.js';

/**
 * Stands in for repository types this build cannot serve yet (remote, virtual):
 * every operation answers UNSUPPORTED with a message naming the repository and
 * its type, never an obscure failure.
 */
export class UnsupportedRepository implements RepositoryBackend {
  constructor(readonly config: RepositoryConfig) {}

  get key(): string {
    return this.config.key;
  }

  get rclass() {
    return this.config.rclass;
  }

  private refuse(): never {
    throw new RegistryError(
      'UNSUPPORTED',
      `repository '${this.key}' is a ${this.rclass} repository; this version of drydock serves only local repositories`,
      { repository: this.key, rclass: this.rclass },
    );
  }

  getManifest(): never {
    return this.refuse();
  }
  putManifest(): never {
    return this.refuse();
  }
  deleteManifest(): never {
    return this.refuse();
  }
  statBlob(): never {
    return this.refuse();
  }
  openBlob(): never {
    return this.refuse();
  }
  deleteBlob(): never {
    return this.refuse();
  }
  listTags(): never {
    return this.refuse();
  }
  referrers(): never {
    return this.refuse();
  }
  images(): never {
    return this.refuse();
  }
  deploymentKey(): never {
    return this.refuse();
  }
}
