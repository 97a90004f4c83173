import { existsSync } from 'node:fs';
import path from 'node:path';
import { datasetsRoot } from '../index';

/**
 * Tests that read the real datasets (MovieLens 100K, Amazon Scientific) run where they are
 * (`STREAMREC_DATASETS_DIR`, else `../shared/datasets`) and are skipped, saying so, in a clone that
 * has none: a new user's `npm test` passes without them. `.ci/run` sets
 * `STREAMREC_REQUIRE_DATASETS=1`, which runs them regardless, so a missing dataset fails there.
 */
function missing(names: readonly string[]): string[] {
  if (process.env.STREAMREC_REQUIRE_DATASETS === '1') return [];
  return names.filter((name) => !existsSync(path.join(datasetsRoot(), name)));
}

const reported = new Set<string>();

function report(absent: readonly string[], what: string): void {
  const line = `[streamrec tests] skipped ${what}: needs ${absent.join(', ')}, not under ${datasetsRoot()} (set STREAMREC_DATASETS_DIR)`;
  if (reported.has(line)) return;
  reported.add(line);
  process.stderr.write(`${line}\n`);
}

/** `it` when every named dataset is present, else `it.skip` (reported once). */
export function itWithDatasets(...names: string[]): jest.It {
  const absent = missing(names);
  if (absent.length === 0) return it;
  report(absent, 'tests');
  return it.skip;
}

/** `describe` when every named dataset is present, else `describe.skip` (reported once). */
export function describeWithDatasets(...names: string[]): jest.Describe {
  const absent = missing(names);
  if (absent.length === 0) return describe;
  report(absent, 'a suite');
  return describe.skip;
}
