import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/** What {@link lowerThreadPriority} did: the nice value now set, or why it set none. */
export type ThreadPriorityResult =
  | { readonly applied: true; readonly threadId: number; readonly niceness: number }
  | { readonly applied: false; readonly reason: string };

/**
 * Raises the nice value of the calling thread (a worker thread's own OS thread, not the process)
 * to `niceness`, so that batch work there yields the cores to the threads that serve and ingest.
 * Threads this thread starts afterwards (TensorFlow's and ONNX Runtime's pools, created when the
 * backend is first used) inherit it, so call it before the thread loads either.
 *
 * Linux only: there a nice value is per thread and `/proc/thread-self` names the thread's id;
 * elsewhere (or when `/proc` is not mounted) nothing changes and the reason says why. 0 changes
 * nothing. A value lower than the current one is left alone (lowering needs privileges, and the
 * operator may have niced the whole process already).
 */
export function lowerThreadPriority(niceness: number): ThreadPriorityResult {
  if (!Number.isInteger(niceness) || niceness < 0 || niceness > 19) {
    throw new RangeError(`niceness: expected an integer in 0..19, got ${niceness}`);
  }
  if (niceness === 0) return { applied: false, reason: 'niceness 0: priority left as it is' };
  if (process.platform !== 'linux') return { applied: false, reason: `per-thread priority is only set on Linux (this is ${process.platform})` };
  let threadId: number;
  try {
    threadId = Number(readlinkSync('/proc/thread-self').split('/').pop());
  } catch (error) {
    return { applied: false, reason: `cannot read /proc/thread-self: ${error instanceof Error ? error.message : String(error)}` };
  }
  if (!Number.isInteger(threadId) || threadId <= 0) return { applied: false, reason: 'cannot read this thread\'s id from /proc/thread-self' };
  const current = getPriority(threadId);
  if (current >= niceness) return { applied: true, threadId, niceness: current };
  try {
    setPriority(threadId, niceness);
  } catch (error) {
    return { applied: false, reason: `setpriority(${threadId}, ${niceness}) failed: ${error instanceof Error ? error.message : String(error)}` };
  }
  return { applied: true, threadId, niceness: getPriority(threadId) };
}
