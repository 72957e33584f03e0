import { run } from '../../bench/proc.mjs';

export interface DockerResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the docker CLI (client only: login, manifest) with its own DOCKER_CONFIG,
 * so tests never touch the user's credentials. Never rejects: the caller checks `code`.
 */
export async function dockerCli(config: string, args: string[], input?: string): Promise<DockerResult> {
  try {
    const { stdout, stderr } = await run('docker', args, {
      env: { ...process.env, DOCKER_CONFIG: config, DOCKER_CLI_HINTS: 'false' },
      input,
      timeoutMs: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const message = (e as Error).message;
    const code = /exit code (\d+)/.exec(message);
    return { code: code ? Number(code[1]) : -1, stdout: '', stderr: message };
  }
}
