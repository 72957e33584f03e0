/**
 * A CNCF distribution registry (docker-registry 2.8) for tests: 127.0.0.1, a
 * free port, filesystem storage in a temp dir, deletes enabled, optional
 * htpasswd Basic auth. Shared with the benchmark harness (bench/cncf-registry.mjs).
 *
 *   const reg = await startCncfRegistry({ htpasswd: { user: 'u', pass: 'p' } });
 *   ...
 *   await reg.stop(); // kills the process, removes the temp dir
 */
export { htpasswdLine, registryConfigYaml, startCncfRegistry } from '../../bench/cncf-registry.mjs';
export type { CncfRegistry, CncfRegistryOptions } from '../../bench/cncf-registry.mjs';
