import { swapErrors } from '../bench/serving';

/**
 * `bench serving`'s `swap_errors` (issue 17's target: 0): the failed requests of the runs with a
 * hot swap, and each swap that did not happen, so that a version that fails to load or a swap
 * that never completes cannot report 0.
 */
describe('bench serving swap_errors', () => {
  it('counts the swap runs\' failed requests and each swap that failed or did not finish', () => {
    expect(swapErrors([{ errors: 0, outcome: 'swapped' }, { errors: 0, outcome: 'swapped' }])).toBe(0);
    expect(swapErrors([{ errors: 2, outcome: 'swapped' }, { errors: 1, outcome: 'swapped' }])).toBe(3);
    expect(swapErrors([{ errors: 0, outcome: 'swap_failed' }, { errors: 0, outcome: 'swapped' }])).toBe(1);
    expect(swapErrors([{ errors: 0, outcome: 'swapped' }, { errors: 4, outcome: 'unfinished' }])).toBe(5);
    expect(swapErrors([{ errors: 0, outcome: 'unfinished' }])).toBe(1); // no run at a rate (--swap-rate 0)
  });
});
