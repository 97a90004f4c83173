import { ConfigError } from '../errors';
import { parseNumberList, parsePoolingList, parseTrainerConfig, type ModelType, type TrainerConfig } from '../trainer';
import type { TrainerSection } from './config';

/**
 * The one mapping from command-line flags to the trainer config, shared by `streamrec train` and
 * `npm run bench -- quality`: each flag names the config key it sets and how its value is read.
 * Flags beat the config file and the environment (the `trainer` section they start from).
 */

type Kind = 'int' | 'number' | 'string' | 'intList' | 'numberList' | 'poolingList' | 'boolean';

export interface TrainerFlag {
  /** Flag name without `--`. */
  readonly flag: string;
  /** Other accepted names (kept for commands written before the flag was renamed). */
  readonly aliases?: readonly string[];
  /** Where the value goes in the trainer config. */
  readonly path: readonly [section: 'model' | 'train' | 'eval', ...keys: string[]];
  readonly kind: Kind;
  readonly description: string;
  /** Only for this model type; an error with the other. */
  readonly only?: ModelType;
}

export const TRAINER_FLAGS: readonly TrainerFlag[] = [
  { flag: 'epochs', path: ['train', 'epochs'], kind: 'int', description: 'maximum epochs (early stopping on the validation metric)' },
  { flag: 'batch', path: ['train', 'batchSize'], kind: 'int', description: 'training sequences per step' },
  { flag: 'lr', path: ['train', 'learningRate'], kind: 'number', description: 'peak learning rate' },
  { flag: 'wd', path: ['train', 'weightDecay'], kind: 'number', description: 'AdamW weight decay' },
  { flag: 'warmup', path: ['train', 'warmupSteps'], kind: 'int', description: 'warm-up steps' },
  { flag: 'schedule', path: ['train', 'schedule'], kind: 'string', description: 'learning rate after warm-up: constant or linear' },
  { flag: 'patience', path: ['train', 'earlyStopPatience'], kind: 'int', description: 'evaluations without a better validation metric before stopping' },
  { flag: 'seed', path: ['train', 'seed'], kind: 'int', description: 'seed of init, dropout, shuffling, negatives and masking' },
  { flag: 'time-budget', path: ['train', 'timeBudgetSeconds'], kind: 'number', description: 'stop after the epoch in which this many seconds have passed (best weights kept)' },
  { flag: 'valid-metric', path: ['train', 'validMetric'], kind: 'string', description: 'validation metric for early stopping, e.g. ndcg@10' },
  { flag: 'embedding', path: ['model', 'embeddingSize'], kind: 'int', description: 'width of item vectors and transformers (CCFRec: the text PCA size)' },
  { flag: 'hidden', path: ['model', 'innerSize'], kind: 'int', description: 'feed-forward inner width' },
  { flag: 'layers', path: ['model', 'nLayers'], kind: 'int', description: 'sequence transformer layers' },
  { flag: 'heads', path: ['model', 'nHeads'], kind: 'int', description: 'attention heads' },
  { flag: 'dropout', path: ['model', 'dropoutProb'], kind: 'number', description: 'dropout of the sequence transformer' },
  { flag: 'tau', path: ['model', 'tau'], kind: 'number', description: 'softmax temperature' },
  { flag: 'max-history', path: ['model', 'maxHistoryLength'], kind: 'int', description: 'history length the model sees' },
  { flag: 'negatives', aliases: ['neg'], path: ['model', 'negNum'], kind: 'int', description: 'sampled negatives per batch (>= catalog size: full softmax)' },
  { flag: 'layers-cross', path: ['model', 'nLayersCross'], kind: 'int', description: 'Q-Former layers', only: 'ccfrec' },
  { flag: 'dropout-cross', path: ['model', 'dropoutProbCross'], kind: 'number', description: 'Q-Former dropout', only: 'ccfrec' },
  { flag: 'mask', path: ['model', 'maskRatio'], kind: 'number', description: 'share of code positions masked for code modelling', only: 'ccfrec' },
  { flag: 'mlm', path: ['model', 'mlmWeight'], kind: 'number', description: 'weight of masked code modelling', only: 'ccfrec' },
  { flag: 'cl', path: ['model', 'clWeight'], kind: 'number', description: 'weight of the contrastive loss', only: 'ccfrec' },
  { flag: 'train-prior', path: ['model', 'textPriorWeight'], kind: 'number', description: 'train and score over the text prior with this weight', only: 'ccfrec' },
  { flag: 'train-prior-last', path: ['model', 'textPriorLastItems'], kind: 'int', description: 'query length of the trained-in text prior', only: 'ccfrec' },
  { flag: 'train-prior-pooling', path: ['model', 'textPriorPooling'], kind: 'string', description: 'pooling of the trained-in text prior: max or mean', only: 'ccfrec' },
  { flag: 'exclude-history', path: ['eval', 'excludeHistory'], kind: 'boolean', description: "remove items of the user's history from the ranking (default: kept rankable)" },
  { flag: 'text-prior', path: ['eval', 'textPrior', 'weights'], kind: 'numberList', description: 'after training, tune a text-similarity prior over these weights on validation (e.g. 0.1,0.25,0.5,1)' },
  { flag: 'text-prior-last', path: ['eval', 'textPrior', 'lastItems'], kind: 'intList', description: "query lengths to try with each weight (latest history items; default 2,5,10)" },
  { flag: 'text-prior-pooling', path: ['eval', 'textPrior', 'pooling'], kind: 'poolingList', description: 'poolings to try: max (nearest item, default) and/or mean' },
];

/** Every flag name and alias (what a flag parser should accept). */
export function trainerFlagNames(): string[] {
  return TRAINER_FLAGS.flatMap((f) => [f.flag, ...(f.aliases ?? [])]);
}

/** commander's camelCase key of a flag (`max-history` -> `maxHistory`). */
export function camelFlag(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function parseValue(spec: TrainerFlag, name: string, raw: string | boolean): unknown {
  const flag = `--${name}`;
  if (spec.kind === 'boolean') {
    if (typeof raw === 'boolean') return raw;
    if (raw === 'true' || raw === 'false') return raw === 'true';
    throw new ConfigError(`${flag}: expected true or false, got ${JSON.stringify(raw)}`, { context: { field: spec.path.join('.') } });
  }
  if (typeof raw !== 'string') throw new ConfigError(`${flag} needs a value`, { context: { field: spec.path.join('.') } });
  switch (spec.kind) {
    case 'string':
      return raw;
    case 'int':
    case 'number': {
      const n = raw.trim() === '' ? NaN : Number(raw);
      if (!Number.isFinite(n) || (spec.kind === 'int' && !Number.isInteger(n))) {
        throw new ConfigError(`${flag}: expected ${spec.kind === 'int' ? 'an integer' : 'a number'}, got ${JSON.stringify(raw)}`, { context: { field: spec.path.join('.') } });
      }
      return n;
    }
    case 'numberList':
      return parseNumberList(flag, raw);
    case 'intList':
      return parseNumberList(flag, raw, { integer: true, min: 1 });
    case 'poolingList':
      return parsePoolingList(flag, raw);
  }
}

function setPath(target: Record<string, unknown>, keys: readonly string[], value: unknown): void {
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    node[key] = next && typeof next === 'object' && !Array.isArray(next) ? { ...(next as Record<string, unknown>) } : {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1] as string] = value;
}

/** The model type a run trains: `--model`, else the config's `trainer.model.type`, else CCFRec. */
export function modelTypeOf(section: TrainerSection, flag: string | undefined): ModelType {
  const type = flag ?? (section.model.type as unknown) ?? 'ccfrec';
  if (type !== 'ccfrec' && type !== 'sasrec') {
    throw new ConfigError(`${flag !== undefined ? '--model' : 'trainer.model.type'} must be ccfrec or sasrec, got ${JSON.stringify(type)}`, { context: { field: 'trainer.model.type' } });
  }
  return type;
}

/**
 * The trainer config of a run: the config's `trainer` section, the model type, then the flags
 * given (keys are flag names or aliases, values strings, or booleans for switches; undefined
 * values are ignored). Unknown flags, values that do not parse and flags of the other model are
 * ConfigErrors naming the flag.
 */
export function trainerConfigFromFlags(section: TrainerSection, modelType: ModelType, flags: Readonly<Record<string, string | boolean | undefined>>): TrainerConfig {
  const byName = new Map<string, TrainerFlag>();
  for (const spec of TRAINER_FLAGS) for (const name of [spec.flag, ...(spec.aliases ?? [])]) byName.set(name, spec);
  const config: Record<string, unknown> = { model: { ...section.model, type: modelType }, train: { ...section.train }, eval: { ...section.eval } };
  const seen = new Map<TrainerFlag, string>();
  for (const [name, raw] of Object.entries(flags)) {
    if (raw === undefined) continue;
    const spec = byName.get(name);
    if (!spec) throw new ConfigError(`unknown trainer flag --${name} (known: ${trainerFlagNames().map((f) => `--${f}`).join(', ')})`);
    const earlier = seen.get(spec);
    if (earlier !== undefined) throw new ConfigError(`--${name} and --${earlier} set the same key (${spec.path.join('.')}); give one`);
    seen.set(spec, name);
    if (spec.only && spec.only !== modelType) throw new ConfigError(`--${name} is a ${spec.only === 'ccfrec' ? 'CCFRec' : 'SASRec'} setting; this run trains ${modelType}`);
    setPath(config, spec.path, parseValue(spec, name, raw));
  }
  return parseTrainerConfig(config);
}
