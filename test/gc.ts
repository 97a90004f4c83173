import v8 from 'node:v8';
import vm from 'node:vm';

/** A full garbage collection (V8's `gc`, exposed for the test that calls it): what is held only weakly is gone after it. */
export function collectGarbage(): void {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
}
