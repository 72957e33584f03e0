import type { ChildProcess } from 'node:child_process';

export declare function freePort(): Promise<number>;

export interface WaitForHttpOptions {
  /** Statuses that count as "up" (default 200 and 401). */
  statuses?: number[];
  timeoutMs?: number;
  /** Fail early when this child exits. */
  child?: ChildProcess;
  /** Name used in the error message. */
  describe?: string;
}
export declare function waitForHttp(url: string, opts?: WaitForHttpOptions): Promise<number>;

export declare function procStatusKiB(pid: number, field: string): number;
export declare function resetPeakRss(pid: number): boolean;
export declare function stopChild(child: ChildProcess, graceMs?: number): Promise<void>;
export declare function describeCommand(cmd: string, args: string[]): string;

export interface RunOptions {
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  input?: string | Buffer;
  cwd?: string;
}
export interface RunResult {
  stdout: string;
  stdoutBuffer: Buffer;
  stderr: string;
}
export declare function run(cmd: string, args: string[], opts?: RunOptions): Promise<RunResult>;
