export interface TestS3rver {
  endpoint: string;
  bucket: string;
  pid: number | undefined;
  /** Client settings for it, as in the `storage.s3` config section (s3rver accepts any credentials). */
  settings: { bucket: string; region: string; endpoint: string; forcePathStyle: true; accessKeyId: string; secretAccessKey: string };
  close(): Promise<void>;
}
export declare function startS3rver(bucket?: string): Promise<TestS3rver>;
