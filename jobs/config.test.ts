import { ConfigError } from '../errors';
import { AppConfig, loadAppConfig, withOverrides } from './config';

describe('the application configuration', () => {
  it('composes every stage with defaults and stays strict', () => {
    const config = AppConfig.parse({});
    expect(config.features.encoder).toBe('glove-sif');
    expect(config.quantizer.method).toBe('rqkmeans');
    expect(config.ingest.history.maxLength).toBe(50);
    expect(config.trainer.train.batchSize).toBe(256);
    expect(config.trainer.eval.batchSize).toBe(512);
    expect(config.modelRegistry.url).toBe('dir:.streamrec/model-registry');
    expect(AppConfig.safeParse({ features: { encodr: 'x' } }).success).toBe(false);
    expect(AppConfig.safeParse({ quantizer: { codesPerLevel: 100 } }).success).toBe(false);
  });

  it('checks the trainer section when it is loaded (train and eval; model once its type is known)', () => {
    expect(() => loadAppConfig({ overrides: { trainer: { train: { epochs: 'many' } } } })).toThrow(/trainer\.train\.epochs/);
    expect(() => loadAppConfig({ overrides: { trainer: { eval: { ks: [] } } } })).toThrow(/trainer\.eval\.ks/);
    expect(() => loadAppConfig({ overrides: { trainer: { evaluation: {} } } })).toThrow(/unknown key\(s\) trainer\.evaluation/);
    expect(loadAppConfig({ overrides: { trainer: { eval: { ks: [10] }, model: { embeddingSize: 32 } } } }).trainer).toMatchObject({ eval: { ks: [10] }, model: { embeddingSize: 32 } });
    expect(() => loadAppConfig({ overrides: { modelRegistry: { url: 's3://x' } } })).toThrow(ConfigError);
  });

  it('orders its sources: defaults < environment < flags, and overrides are checked again', () => {
    const env = { STREAMREC__FEATURES__PCA_DIMS: '32', STREAMREC__TRAINER__EVAL__BATCH_SIZE: '64' };
    expect(loadAppConfig({ env }).features.pcaDims).toBe(32);
    expect(loadAppConfig({ env }).trainer.eval.batchSize).toBe(64);
    expect(loadAppConfig({ env, overrides: { features: { pcaDims: 16 } } }).features.pcaDims).toBe(16);
    const base = loadAppConfig({ env });
    expect(withOverrides(base, { quantizer: { levels: 3 } }).quantizer.levels).toBe(3);
    expect(withOverrides(base, { quantizer: { levels: 3 } }).features.pcaDims).toBe(32);
    expect(() => withOverrides(base, { quantizer: { codesPerLevel: 100 } })).toThrow();
  });
});
