/**
 * How much a set of processes' main threads ran and waited for a core, from Linux's per-thread
 * scheduler statistics (`/proc/<pid>/task/<pid>/schedstat`: ns on a CPU, ns runnable but waiting
 * on a run queue, time slices). `bench serving` reports it for the server's processes over its
 * open-loop run: on a machine whose cores the server shares with the load generator, the
 * latency tail is made of that waiting (docs/benchmarks.md). Elsewhere (no /proc, or a kernel
 * without schedstats) every reading is undefined and the benchmark leaves the field out.
 */
import { readFileSync, readdirSync } from 'node:fs';

export interface ThreadSchedstat {
  readonly runNs: number;
  readonly waitNs: number;
}

/** The main thread's counters of process `pid`, or undefined when they cannot be read. */
export function readSchedstat(pid: number): ThreadSchedstat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8');
  } catch {
    return undefined;
  }
  const [run, wait] = text.trim().split(/\s+/).map(Number);
  if (!Number.isFinite(run) || !Number.isFinite(wait)) return undefined;
  return { runNs: run as number, waitNs: wait as number };
}

/** `pid` and every process below it (children, their children...), from each process's parent in /proc/<pid>/stat. */
export function processTree(pid: number): number[] {
  const parentOf = new Map<number, number>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [pid];
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parentOf.set(Number(entry), ppid);
    } catch {
      // exited while listed
    }
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) for (const [child, parent] of parentOf) if (parent === tree[i]) tree.push(child);
  return tree;
}

/** Per process of `pids`: its main thread's ms on a CPU and ms waiting for one, per second of `seconds`, between two readings. */
export function schedstatRates(
  before: ReadonlyMap<number, ThreadSchedstat | undefined>,
  after: ReadonlyMap<number, ThreadSchedstat | undefined>,
  seconds: number,
): Array<{ pid: number; run_ms_per_s: number; wait_ms_per_s: number }> {
  const out: Array<{ pid: number; run_ms_per_s: number; wait_ms_per_s: number }> = [];
  for (const [pid, a] of after) {
    const b = before.get(pid);
    if (!a || !b || !(seconds > 0)) continue;
    out.push({ pid, run_ms_per_s: Math.round((a.runNs - b.runNs) / 1e6 / seconds), wait_ms_per_s: Math.round((a.waitNs - b.waitNs) / 1e6 / seconds) });
  }
  return out;
}

/** Reads every process of `pids` now. */
export function readAll(pids: readonly number[]): Map<number, ThreadSchedstat | undefined> {
  return new Map(pids.map((pid) => [pid, readSchedstat(pid)]));
}
