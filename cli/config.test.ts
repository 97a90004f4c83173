import { AppConfig, commandConfig } from './config';

describe('the command-line configuration', () => {
  it('composes every stage with defaults and stays strict', () => {
    const config = AppConfig.parse({});
    expect(config.features.encoder).toBe('glove-sif');
    expect(config.quantizer.method).toBe('rqkmeans');
    expect(config.ingest.history.maxLength).toBe(50);
    expect(AppConfig.safeParse({ features: { encodr: 'x' } }).success).toBe(false);
    expect(AppConfig.safeParse({ quantizer: { codesPerLevel: 100 } }).success).toBe(false);
  });

  it('lets flags override the environment', () => {
    const saved = process.env.STREAMREC__FEATURES__PCA_DIMS;
    process.env.STREAMREC__FEATURES__PCA_DIMS = '32';
    try {
      expect(commandConfig({}).features.pcaDims).toBe(32);
      expect(commandConfig({}, { features: { pcaDims: 16 } }).features.pcaDims).toBe(16);
    } finally {
      if (saved === undefined) delete process.env.STREAMREC__FEATURES__PCA_DIMS;
      else process.env.STREAMREC__FEATURES__PCA_DIMS = saved;
    }
  });
});
