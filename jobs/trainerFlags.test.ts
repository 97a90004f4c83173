import { ConfigError } from '../errors';
import { AppConfig } from './config';
import { TRAINER_FLAGS, modelTypeOf, trainerConfigFromFlags, trainerFlagNames } from './trainerFlags';

const section = (raw: unknown = {}) => AppConfig.parse({ trainer: raw }).trainer;

describe('trainer flags', () => {
  it('set the keys they name over the config section, which sets the rest over the defaults', () => {
    const config = trainerConfigFromFlags(section({ train: { epochs: 7, learningRate: 0.005 }, model: { embeddingSize: 32 } }), 'ccfrec', {
      epochs: '3',
      neg: '100000',
      'max-history': '10',
      mlm: '0.2',
      'exclude-history': true,
      'text-prior': '0.5,1',
      'text-prior-last': '2,5',
      'text-prior-pooling': 'max,mean',
      batch: undefined,
    });
    expect(config.train).toMatchObject({ epochs: 3, learningRate: 0.005, batchSize: 256 });
    expect(config.model).toMatchObject({ type: 'ccfrec', embeddingSize: 32, negNum: 100000, maxHistoryLength: 10, mlmWeight: 0.2 });
    expect(config.eval).toMatchObject({ excludeHistory: true, textPrior: { weights: [0.5, 1], lastItems: [2, 5], pooling: ['max', 'mean'] } });
  });

  it('say which flag is wrong, what was expected and what was given', () => {
    const s = section();
    expect(() => trainerConfigFromFlags(s, 'ccfrec', { epochs: 'two' })).toThrow('--epochs: expected an integer, got "two"');
    expect(() => trainerConfigFromFlags(s, 'ccfrec', { lr: '' })).toThrow('--lr: expected a number, got ""');
    expect(() => trainerConfigFromFlags(s, 'sasrec', { mlm: '0.1' })).toThrow('--mlm is a CCFRec setting; this run trains sasrec');
    expect(() => trainerConfigFromFlags(s, 'ccfrec', { negatives: '5', neg: '6' })).toThrow('--neg and --negatives set the same key (model.negNum); give one');
    expect(() => trainerConfigFromFlags(s, 'ccfrec', { epoch: '5' })).toThrow(/unknown trainer flag --epoch/);
    expect(() => trainerConfigFromFlags(s, 'ccfrec', { 'text-prior-pooling': 'median' })).toThrow('--text-prior-pooling: expected max or mean');
    // Values that parse but break the schema name the key.
    expect(() => trainerConfigFromFlags(s, 'ccfrec', { heads: '3' })).toThrow(/nHeads \(3\) must divide embeddingSize \(64\)/);
    expect(() => trainerConfigFromFlags(s, 'ccfrec', { epochs: '0' })).toThrow(ConfigError);
  });

  it('take the model type from --model, else the config, else CCFRec', () => {
    expect(modelTypeOf(section(), undefined)).toBe('ccfrec');
    expect(modelTypeOf(section({ model: { type: 'sasrec' } }), undefined)).toBe('sasrec');
    expect(modelTypeOf(section({ model: { type: 'sasrec' } }), 'ccfrec')).toBe('ccfrec');
    expect(() => modelTypeOf(section(), 'bert4rec')).toThrow('--model must be ccfrec or sasrec, got "bert4rec"');
    // A config written for one model is checked against that model's schema.
    expect(() => trainerConfigFromFlags(section({ model: { type: 'sasrec', mlmWeight: 0.1 } }), 'sasrec', {})).toThrow(/mlmWeight/);
  });

  it('have unique names that map to distinct keys', () => {
    const names = trainerFlagNames();
    expect(new Set(names).size).toBe(names.length);
    const paths = TRAINER_FLAGS.map((f) => f.path.join('.'));
    expect(new Set(paths).size).toBe(paths.length);
  });
});
