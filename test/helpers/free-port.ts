/** A TCP port free on 127.0.0.1 (shared with the bench harness: bench/proc.mjs). */
export { freePort } from '../../bench/proc.mjs';
