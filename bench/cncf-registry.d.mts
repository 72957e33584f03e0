export declare const REGISTRY_BINARY: string;

export interface CncfRegistryOptions {
  /** Enable htpasswd (bcrypt) Basic auth with this one user. */
  htpasswd?: { user: string; pass: string };
}

export interface CncfRegistry {
  /** http://127.0.0.1:PORT */
  url: string;
  /** 127.0.0.1:PORT (for image references) */
  host: string;
  port: number;
  pid: number;
  /** The registry's filesystem storage root. */
  dataDir: string;
  /** VmRSS of the registry process in KiB (0 once it is gone). */
  rssKiB(): number;
  /** VmHWM (peak RSS) of the registry process in KiB. */
  hwmKiB(): number;
  /** Resets VmHWM to the current RSS; false when the kernel refused. */
  resetPeakRss(): boolean;
  /** Stops the process and removes its temp dir; idempotent. */
  stop(): Promise<void>;
}

export declare function htpasswdLine(user: string, pass: string): string;
export declare function registryConfigYaml(o: { port: number; rootDir: string; htpasswdPath?: string }): string;
export declare function startCncfRegistry(opts?: CncfRegistryOptions): Promise<CncfRegistry>;
