import { EvalConfig } from '../trainer';
import { priorSettings } from './evaluate';

describe('the text prior of an evaluation', () => {
  const tuned = { weight: 0.4, lastItems: 8, pooling: 'max' as const };
  const config = EvalConfig.parse({ textPrior: { lastItems: 3, pooling: 'mean' } });

  it('is the tuned one for `tuned`, and none without a prior', () => {
    expect(priorSettings({ kind: 'tuned' }, tuned, config, 'checkpoint-x')).toEqual(tuned);
    expect(priorSettings({ kind: 'none' }, tuned, config, 'checkpoint-x')).toBeUndefined();
    expect(() => priorSettings({ kind: 'tuned' }, undefined, config, 'checkpoint-x')).toThrow('--text-prior tuned: checkpoint checkpoint-x was saved without a tuned text prior');
  });

  it('takes a given weight with the given query length and pooling, else the tuned ones, else trainer.eval.textPrior', () => {
    expect(priorSettings({ kind: 'weight', weight: 1, lastItems: 2, pooling: 'mean' }, tuned, config, 'c')).toEqual({ weight: 1, lastItems: 2, pooling: 'mean' });
    expect(priorSettings({ kind: 'weight', weight: 1 }, tuned, config, 'c')).toEqual({ weight: 1, lastItems: 8, pooling: 'max' });
    expect(priorSettings({ kind: 'weight', weight: 1 }, undefined, config, 'c')).toEqual({ weight: 1, lastItems: 3, pooling: 'mean' });
  });

  it('asks for the flag when the config lists several values to try', () => {
    const grid = EvalConfig.parse({});
    expect(() => priorSettings({ kind: 'weight', weight: 1 }, undefined, grid, 'c')).toThrow(
      'trainer.eval.textPrior.lastItems lists 3 values (2, 5, 10); evaluation uses one: give --text-prior-last',
    );
  });
});
