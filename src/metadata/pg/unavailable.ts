import { MetadataUnavailableError } from '../errors.js';

/**
 * SQLSTATEs that mean "the database cannot serve this now", not "this request
 * is wrong": connection exceptions (class 08), insufficient resources (class
 * 53), operator intervention (57P01 admin shutdown, 57P02 crash shutdown,
 * 57P03 cannot connect now), statement timeout (57014) and lock timeout (55P03).
 */
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '57014', '55P03']);
const UNAVAILABLE_SQLSTATE_CLASSES = ['08', '53'];

/** Socket-level failures reaching or talking to the server. */
const UNAVAILABLE_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
]);

/** node-postgres and pg-pool report these without a code. */
const UNAVAILABLE_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error',
  'Query read timeout',
];

interface ErrorLike {
  message: string;
  code?: unknown;
  errors?: unknown;
}

// Duck-typed, not `instanceof Error`: socket errors are created by Node core,
// which under a vm context (jest) is another realm with another Error class.
function isErrorLike(e: unknown): e is ErrorLike {
  return typeof e === 'object' && e !== null && typeof (e as { message?: unknown }).message === 'string';
}

function isUnavailable(e: unknown): boolean {
  if (!isErrorLike(e)) return false;
  const code = e.code;
  if (typeof code === 'string') {
    if (UNAVAILABLE_SQLSTATES.has(code) || UNAVAILABLE_ERRNOS.has(code)) return true;
    if (code.length === 5 && UNAVAILABLE_SQLSTATE_CLASSES.includes(code.slice(0, 2))) return true;
  }
  // Node reports a failed connect to a host with several addresses as an AggregateError.
  if (Array.isArray(e.errors) && e.errors.some(isUnavailable)) return true;
  return UNAVAILABLE_MESSAGES.some((m) => e.message.startsWith(m));
}

/**
 * Translates a driver error for callers of the store: availability problems
 * become `MetadataUnavailableError` (with the original as `cause`); every other
 * error is returned unchanged, so constraint violations keep their SQLSTATE `code`.
 */
export function toMetadataError(e: unknown): unknown {
  if (e instanceof MetadataUnavailableError || !isUnavailable(e)) return e;
  return new MetadataUnavailableError(`metadata database unavailable: ${(e as ErrorLike).message}`, { cause: e });
}
