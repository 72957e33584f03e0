/** The s3rver helper lives in bench/ (plain ESM) so the benchmark can use it too. */
export { startS3rver } from '../../bench/s3rver.mjs';
export type { TestS3rver } from '../../bench/s3rver.mjs';
