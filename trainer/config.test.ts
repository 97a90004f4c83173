import type { z } from 'zod';
import { ConfigError } from '../errors';
import { CcfrecConfig, EvalConfig, SasrecConfig, TextPriorConfig, TrainConfig, parseTrainerConfig } from './config';

describe('trainer config', () => {
  it('defaults are the reference defaults (benchmark batch 256)', () => {
    const c = parseTrainerConfig({ model: { type: 'ccfrec' } });
    expect(c.model).toEqual({
      type: 'ccfrec',
      embeddingSize: 64,
      innerSize: 256,
      nLayers: 2,
      nHeads: 2,
      dropoutProb: 0.5,
      maxHistoryLength: 20,
      layerNormEps: 1e-12,
      initializerRange: 0.02,
      negNum: 49,
      tau: 0.07,
      nLayersCross: 2,
      dropoutProbCross: 0.3,
      maskRatio: 0.5,
      mlmWeight: 0.1,
      clWeight: 0.1,
      // Ours, off by default: the reference has no text prior.
      textPriorWeight: 0,
      textPriorLastItems: 2,
      textPriorPooling: 'max',
    });
    expect(c.train).toMatchObject({ batchSize: 256, learningRate: 1e-3, weightDecay: 1e-4, warmupSteps: 500, schedule: 'constant', earlyStopPatience: 10, validMetric: 'ndcg@10', weightDecayOn: 'all', seed: 2020 });
    expect(c.eval).toEqual({ ks: [5, 10, 20, 50], excludeHistory: false, batchSize: 512, textPrior: { weights: [], lastItems: [2, 5, 10], pooling: ['max'] } });
  });

  it('rejects unknown keys and bad values with a ConfigError naming the key', () => {
    expect(() => parseTrainerConfig({ model: { type: 'sasrec', nLayersCross: 2 } })).toThrow(ConfigError);
    expect(() => parseTrainerConfig({ model: { type: 'sasrec' }, train: { lr: 0.1 } })).toThrow(/unknown keys: lr/);
    expect(() => parseTrainerConfig({ model: { type: 'ccfrec', embeddingSize: 64, nHeads: 3 } })).toThrow(/model\.nHeads.*must divide/);
    expect(() => parseTrainerConfig({ model: { type: 'bert4rec' } })).toThrow(/model\.type/);
    expect(() => parseTrainerConfig({ model: { type: 'sasrec' }, train: { validMetric: 'auc@10' } })).toThrow(/train\.validMetric/);
    expect(() => parseTrainerConfig({ model: { type: 'ccfrec' }, eval: { textPrior: { weights: [0.5, -1] } } })).toThrow(
      /invalid eval\.textPrior\.weights\.1: .*received number -1/,
    );
    expect(parseTrainerConfig({ model: { type: 'ccfrec' }, eval: { textPrior: { pooling: 'mean' } } }).eval.textPrior.pooling).toEqual(['mean']);
    expect(() => parseTrainerConfig({ model: { type: 'ccfrec' }, eval: { textPrior: { pooling: ['max', 'sum'] } } })).toThrow(/eval\.textPrior\.pooling/);
    expect(() => parseTrainerConfig({ model: { type: 'ccfrec', textPriorPooling: 'sum' } })).toThrow(/model\.textPriorPooling/);
  });

  it('documents every key', () => {
    const schemas: Array<[string, z.ZodObject]> = [
      ['ccfrec', CcfrecConfig],
      ['sasrec', SasrecConfig],
      ['train', TrainConfig],
      ['eval', EvalConfig],
      ['eval.textPrior', TextPriorConfig],
    ];
    for (const [name, schema] of schemas) {
      for (const [key, field] of Object.entries(schema.shape)) {
        expect(`${name}.${key}: ${(field as z.ZodType).description ?? ''}`).toMatch(/: .{10,}/);
      }
    }
  });
});
