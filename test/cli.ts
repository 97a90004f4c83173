import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..');

/** Starts `streamrec <args>` from source (through tsx) as a child process. */
export function spawnCli(args: string[], env: Record<string, string> = {}): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'cli', 'main.ts'), ...args], {
    cwd: ROOT,
    env: { ...process.env, STREAMREC_LOG_LEVEL: process.env.STREAMREC_CHILD_LOG_LEVEL ?? 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout?.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (text += d.toString()));
  return Object.assign(child, { output: () => text });
}

export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve({ code: child.exitCode, signal: child.signalCode });
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

/** Runs `streamrec <args>` to its end (killed after `killAfterMs`): exit code and everything it printed. */
export async function runCli(args: string[], env: Record<string, string> = {}, killAfterMs = 90_000): Promise<{ code: number | null; output: string }> {
  const child = spawnCli(args, env);
  const killer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  const { code } = await exited(child);
  clearTimeout(killer);
  return { code, output: child.output() };
}
