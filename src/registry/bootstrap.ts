import type { Config } from '../core/config/index.js';
import { BOOTSTRAP_ADMIN } from '../core/config/security.js';
import type { Logger } from '../core/log.js';
import { generatePassword, hashPassword, verifyPassword } from './auth/passwords.js';
import type { Services } from './services.js';

export const ADMIN_USER = BOOTSTRAP_ADMIN;

/**
 * First-start and every-start setup, all idempotent: the admin user (password
 * from config/`DRYDOCK_ADMIN_PASSWORD`, else generated and printed once), the
 * default repositories at first start, then the config file's `repositories:`,
 * then its `users:`, `groups:` and `permissions:` (after the repositories they name).
 */
export async function bootstrap(services: Services, config: Config, log: Logger): Promise<void> {
  await ensureAdmin(services, config, log);
  const defaults = await services.repositories.ensureDefaults();
  if (defaults.length) log.info({ repositories: defaults }, 'created the default repositories');
  const { created, updated } = await services.repositories.apply(config.repositories);
  if (created.length || updated.length) log.info({ created, updated }, 'applied repositories from the configuration');
  const security = await services.security.apply(config);
  if (security.created.length || security.updated.length) {
    log.info({ created: security.created, updated: security.updated }, 'applied users, groups and permissions from the configuration');
  }
}

async function ensureAdmin(services: Services, config: Config, log: Logger): Promise<void> {
  const { store } = services;
  const configured = config.auth.adminPassword;
  const existing = await store.users.get(ADMIN_USER);
  if (existing?.passwordHash) {
    // A configured password is authoritative: rotating the secret rotates the admin's password.
    if (configured && !(await verifyPassword(configured, existing.passwordHash))) {
      await store.users.upsert({ name: ADMIN_USER, passwordHash: await hashPassword(configured), email: existing.email, admin: true });
      services.authenticator.forget();
      log.info('admin password updated from the configuration');
    }
    return;
  }
  const password = configured ?? generatePassword();
  await store.users.upsert({ name: ADMIN_USER, passwordHash: await hashPassword(password), admin: true });
  if (!configured) {
    // Printed once, on the console rather than in the JSON log stream.
    process.stdout.write(
      `\n  drydock: created user '${ADMIN_USER}' with the generated password: ${password}\n` +
        `  (set DRYDOCK_ADMIN_PASSWORD to choose it; this is the only time it is shown)\n\n`,
    );
  }
  log.info({ user: ADMIN_USER, generated: !configured }, 'created the admin user');
}
