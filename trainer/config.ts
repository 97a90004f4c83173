import { z } from 'zod';
import { ConfigError, describeValue } from '../errors';

/**
 * Settings of the trainer stage: one strict schema, a default and a description for every key.
 * The model defaults are CCFRec's reference defaults (its `main.py` argparse) except where noted;
 * parse untrusted input with {@link parseTrainerConfig}.
 */

/** How the text prior pools a candidate's cosines to the query items (trainer/textPrior.ts). */
export const TEXT_PRIOR_POOLINGS = ['max', 'mean'] as const;
export type TextPriorPooling = (typeof TEXT_PRIOR_POOLINGS)[number];

/** The causal transformer both models share (RecBole's `Transformer`, post-LayerNorm). */
const encoderShape = {
  embeddingSize: z
    .number()
    .int()
    .min(2)
    .max(4096)
    .default(64)
    .describe(
      'Width H of item vectors and of every transformer (reference `embedding_size`, 64; 128 is the other published setting). ' +
        'CCFRec: the text embeddings must have exactly this many dimensions (PCA to H, as the reference does).',
    ),
  innerSize: z
    .number()
    .int()
    .min(1)
    .default(256)
    .describe('Inner width of every feed-forward block (reference `hidden_size`, 256; 512 is the other published setting).'),
  nLayers: z.number().int().min(1).max(24).default(2).describe('Layers of the causal sequence transformer (reference `n_layers`, 2).'),
  nHeads: z
    .number()
    .int()
    .min(1)
    .max(64)
    .default(2)
    .describe('Attention heads in every attention block; must divide embeddingSize (reference `n_heads`, 2).'),
  dropoutProb: z
    .number()
    .min(0)
    .max(0.95)
    .default(0.5)
    .describe('Dropout of the sequence transformer (hidden and attention) and of the embedding layer (reference `dropout_prob`, 0.5).'),
  maxHistoryLength: z
    .number()
    .int()
    .min(1)
    .max(512)
    .default(20)
    .describe('Most recent history items fed to the model; older ones are cut off (reference `max_his_len`, 20).'),
  layerNormEps: z.number().positive().default(1e-12).describe('LayerNorm epsilon (reference 1e-12).'),
  initializerRange: z
    .number()
    .positive()
    .default(0.02)
    .describe('Standard deviation of the normal init of dense and embedding weights (reference 0.02); LayerNorm starts at ones/zeros.'),
  negNum: z
    .number()
    .int()
    .min(1)
    .default(49)
    .describe(
      'Negatives per batch for the recommendation loss: one shared set of sampled items, never a positive of the batch or padding ' +
        '(reference `neg_num`, 49). At or above the catalog size the loss is a full softmax over all items.',
    ),
  tau: z
    .number()
    .positive()
    .default(0.07)
    .describe('Softmax temperature of every loss, applied to cosine similarities of L2-normalised vectors (reference `tau`, 0.07).'),
};

function checkHeads(value: { embeddingSize: number; nHeads: number }, ctx: z.RefinementCtx): void {
  if (value.embeddingSize % value.nHeads !== 0) {
    ctx.addIssue({
      code: 'custom',
      path: ['nHeads'],
      message: `nHeads (${value.nHeads}) must divide embeddingSize (${value.embeddingSize})`,
      input: value.nHeads,
    });
  }
}

export const CcfrecConfig = z
  .strictObject({
    type: z.literal('ccfrec').describe('CCFRec: semantic-code queries cross-attend over frozen text embeddings (Q-Former), then a causal transformer.'),
    ...encoderShape,
    nLayersCross: z.number().int().min(1).max(24).default(2).describe('Layers of the code/text cross-attention Q-Former (reference `n_layers_cross`, 2).'),
    dropoutProbCross: z
      .number()
      .min(0)
      .max(0.95)
      .default(0.3)
      .describe('Dropout (hidden and attention) inside the Q-Former (reference `dropout_prob_cross`, 0.3).'),
    maskRatio: z
      .number()
      .min(0)
      .max(1)
      .default(0.5)
      .describe('Share of code positions picked for masked code modelling; of those 80% become the mask token, 10% a random code, 10% stay (reference `mask_ratio`, 0.5).'),
    mlmWeight: z.number().min(0).default(0.1).describe('Weight of the masked code modelling loss (reference `mlm_weight`, 0.1).'),
    clWeight: z
      .number()
      .min(0)
      .default(0.1)
      .describe('Weight of the contrastive loss between the original and the masked view of each sequence (reference `cl_weight`, 0.1).'),
    textPriorWeight: z
      .number()
      .finite()
      .min(0)
      .default(0)
      .describe(
        'Not in the reference (0 = off): train and score as model cosine + w x the text prior (trainer/textPrior.ts), so the ' +
          'model learns what the text similarity to the last items does not already say.',
      ),
    textPriorLastItems: z.number().int().min(1).default(2).describe('Latest distinct history items forming the text prior\'s query (with textPriorWeight > 0).'),
    textPriorPooling: z
      .enum(TEXT_PRIOR_POOLINGS)
      .default('max')
      .describe('How the text prior pools a candidate\'s cosines to the query items: max (nearest item) or mean (with textPriorWeight > 0).'),
  })
  .superRefine(checkHeads)
  .describe('CCFRec model settings.');
export type CcfrecConfig = z.infer<typeof CcfrecConfig>;

export const SasrecConfig = z
  .strictObject({
    type: z.literal('sasrec').describe('SASRec: item-ID embeddings and the same causal transformer; the baseline.'),
    ...encoderShape,
  })
  .superRefine(checkHeads)
  .describe('SASRec model settings (same encoder and recommendation loss as CCFRec, item-ID embeddings instead of codes and text).');
export type SasrecConfig = z.infer<typeof SasrecConfig>;

export const ModelConfig = z.discriminatedUnion('type', [CcfrecConfig, SasrecConfig]).describe('Which model, with its settings.');
export type ModelConfig = z.infer<typeof ModelConfig>;
export type ModelType = ModelConfig['type'];

export const METRIC_KS = [5, 10, 20, 50] as const;
export const metricName = z
  .string()
  .regex(/^(recall|ndcg|mrr|hit)@[1-9][0-9]*$/, 'expected `<recall|ndcg|mrr|hit>@<k>`, e.g. `ndcg@10`');

export const TrainConfig = z
  .strictObject({
    epochs: z.number().int().min(1).default(500).describe('Most epochs; early stopping usually ends sooner (reference `epochs`, 500).'),
    batchSize: z
      .number()
      .int()
      .min(1)
      .default(256)
      .describe('Training sequences per step (the benchmark spec uses 256; the reference used 2048 on a GPU).'),
    learningRate: z.number().positive().default(1e-3).describe('Peak AdamW learning rate (reference `lr`, 1e-3).'),
    weightDecay: z.number().min(0).default(1e-4).describe('Decoupled AdamW weight decay (reference `weight_decay`, 1e-4).'),
    weightDecayOn: z
      .enum(['all', 'matrices'])
      .default('all')
      .describe(
        '`all`: decay every trained weight, as the reference does (torch AdamW over model.parameters()); ' +
          '`matrices`: skip LayerNorm weights and biases (the BERT convention).',
      ),
    schedule: z
      .enum(['constant', 'linear'])
      .default('constant')
      .describe('Learning rate after warm-up: `constant`, or `linear` decay to 0 at the last step (reference `lr_scheduler_type`, constant).'),
    warmupSteps: z
      .number()
      .int()
      .min(0)
      .default(500)
      .describe('Steps of linear warm-up from 0 to the peak learning rate (reference `warmup_steps`, 500).'),
    adamBeta1: z.number().min(0).max(0.99999).default(0.9).describe('AdamW beta1 (torch default 0.9).'),
    adamBeta2: z.number().min(0).max(0.99999999).default(0.999).describe('AdamW beta2 (torch default 0.999).'),
    adamEpsilon: z.number().positive().default(1e-8).describe('AdamW epsilon (torch default 1e-8).'),
    earlyStopPatience: z
      .number()
      .int()
      .min(1)
      .default(10)
      .describe('Stop after this many evaluations without a strictly better validation metric (reference `early_stop`, 10).'),
    validMetric: metricName.default('ndcg@10').describe('Validation metric for early stopping and the best checkpoint (reference `valid_metric`, ndcg@10).'),
    evalEvery: z.number().int().min(1).default(1).describe('Evaluate on the validation split every this many epochs (reference `eval_step`, 1).'),
    maxNonFiniteSteps: z
      .number()
      .int()
      .min(1)
      .default(10)
      .describe('Abort after this many consecutive steps whose gradients were not finite (each such step is skipped and counted).'),
    timeBudgetSeconds: z
      .number()
      .min(0)
      .default(0)
      .describe('Stop training (best weights kept) once an epoch ends after this many seconds; 0 means no limit.'),
    seed: z.number().int().default(2020).describe('Seed of every random choice: init, dropout, shuffling, negatives, masking (reference `seed`, 2020).'),
  })
  .describe('Optimisation and early stopping.');
export type TrainConfig = z.infer<typeof TrainConfig>;

/** One value or a non-empty list of them, read as a list. */
function oneOrList<T extends z.ZodType>(item: T) {
  return z.union([item, z.array(item).min(1)]).transform((v): Array<z.output<T>> => (Array.isArray(v) ? v : [v]));
}

export const TextPriorConfig = z
  .strictObject({
    weights: z
      .array(z.number().finite().min(0))
      .default([])
      .describe(
        'Weights w of the text prior to try after training (trainer/textPrior.ts: score = model cosine + w x text ' +
          'similarity to the last items). The best (w, lastItems) on the validation split (by validMetric; the model ' +
          'alone always competes) is reported on the test split beside the model alone and stored with the checkpoint. ' +
          'Empty (the default): off. Needs item text embeddings (the side information).',
      ),
    lastItems: oneOrList(z.number().int().min(1))
      .default([2, 5, 10])
      .describe('Query lengths to try with each weight: how many of the latest distinct history items form the text query (a number or a list).'),
    pooling: oneOrList(z.enum(TEXT_PRIOR_POOLINGS))
      .default(['max'])
      .describe(
        'How a candidate\'s cosines to the query items become its prior, one or a list to try: max (the nearest query ' +
          'item; the default) or mean (the mean cosine).',
      ),
  })
  .describe('Fusing the ranking with a text-similarity prior, tuned on the validation split.');
export type TextPriorConfig = z.infer<typeof TextPriorConfig>;

export const EvalConfig = z
  .strictObject({
    ks: z
      .array(z.number().int().min(1))
      .min(1)
      .default([...METRIC_KS])
      .describe('Cut-offs K of Recall/NDCG/MRR/Hit@K.'),
    excludeHistory: z
      .boolean()
      .default(false)
      .describe(
        'Exclude the items of each user\'s history (all of it, not only the last maxHistoryLength) from the ranking. ' +
          'Off by default: the reference keeps history items rankable. The target itself always stays rankable.',
      ),
    batchSize: z.number().int().min(1).default(512).describe('Users scored per evaluation batch.'),
    textPrior: TextPriorConfig.prefault({}).describe('Fusing the ranking with a text-similarity prior tuned on validation (off by default).'),
  })
  .describe('Full-ranking evaluation.');
export type EvalConfig = z.infer<typeof EvalConfig>;

export const TrainerConfig = z
  .strictObject({
    model: ModelConfig,
    train: TrainConfig.prefault({}),
    eval: EvalConfig.prefault({}),
  })
  .describe('Everything a training run needs besides data and artifacts.');
export type TrainerConfig = z.infer<typeof TrainerConfig>;
/** Settings as written by a user: every key but `model.type` optional. */
export type TrainerConfigInput = z.input<typeof TrainerConfig>;

function configErrorFrom(error: z.ZodError, what: string): ConfigError {
  const issue = error.issues[0];
  const key = issue && issue.path.length > 0 ? issue.path.join('.') : '(root)';
  const received = issue && 'input' in issue && issue.input !== undefined ? `; received ${describeValue(issue.input)}` : '';
  const unknown = issue?.code === 'unrecognized_keys' ? ` (unknown keys: ${issue.keys.join(', ')})` : '';
  return new ConfigError(`${what}: invalid ${key}: ${issue?.message ?? 'invalid'}${unknown}${received}`, { context: { field: key } });
}

/** Parses trainer settings (defaults filled in) or throws a ConfigError naming the key. */
export function parseTrainerConfig(input: unknown): TrainerConfig {
  const parsed = TrainerConfig.safeParse(input, { reportInput: true });
  if (!parsed.success) throw configErrorFrom(parsed.error, 'trainer settings');
  return parsed.data;
}

/** Parses model settings alone (defaults filled in) or throws a ConfigError naming the key. */
export function parseModelConfig(input: unknown): ModelConfig {
  const parsed = ModelConfig.safeParse(input, { reportInput: true });
  if (!parsed.success) throw configErrorFrom(parsed.error, 'model settings');
  return parsed.data;
}
