/**
 * `npm run bench -- quality --model ccfrec|sasrec [options]`: the Amazon Scientific quality
 * experiment. Trains on the shipped leave-one-out split until early stopping (or the time
 * budget) and reports full-ranking valid and test metrics of the best epoch.
 *
 * Side information (and the external -> dense item id mapping) comes from a `streamrec rebuild`
 * artifact store given with `--artifacts <dir>`, or, without it, from a fresh rebuild with the
 * default encoder and quantizer (GloVe-SIF, PCA 64, RQ-KMeans 4 x 256) in a temporary store.
 * SASRec uses the same mapping, so both models see identical data.
 *
 *   npm run bench -- quality --model ccfrec [--artifacts dir] [--name base] [--embedding 64]
 *     [--hidden 256] [--layers 2] [--layers-cross 2] [--heads 2] [--max-history 20] [--neg 49]
 *     [--lr 1e-3] [--wd 1e-4] [--dropout 0.5] [--dropout-cross 0.3] [--tau 0.07] [--mask 0.5]
 *     [--mlm 0.1] [--cl 0.1] [--epochs 500] [--patience 10] [--warmup 500] [--batch 256]
 *     [--schedule constant] [--seed 2020] [--time-budget 0] [--valid-metric ndcg@10]
 *     [--dataset scientific] [--out result.json] [--checkpoints dir]
 *
 * `--text-prior 0.1,0.25,0.5,1` tunes the text prior (trainer/textPrior.ts) over these weights on
 * validation after training and reports it on test beside the model alone (SASRec then reads the
 * text embeddings too, for the prior only).
 * `--text-prior-last 2,5,10` and `--text-prior-pooling max,mean` widen that grid.
 * `--train-prior 0.5` (CCFRec) trains and scores over the text prior (`textPriorWeight`, with
 * `--train-prior-last` and `--train-prior-pooling`): the model learns the residual of the text
 * similarity.
 * `--checkpoints <dir>` writes the best weights there as a checkpoint artifact (for
 * `streamrec eval` or `bench -- fusion`).
 * `--neg` at or above the catalog size (e.g. `--neg 100000`) trains with a full softmax.
 * Progress (one line per epoch and per validation) goes to stderr. Evaluation is the trainer's:
 * full ranking over all items, history items rankable (the default `excludeHistory: false`,
 * reported in the output).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadDataset } from '../datasets';
import { ArtifactStore } from '../infra/artifacts';
import { AppConfig, modelTypeOf, runTrainJob, trainerConfigFromFlags, trainerFlagNames } from '../jobs';
import type { EpochRow, EvaluationRow, TrainingObserver } from '../trainer';
import { defaultRebuild } from './_defaultRebuild';
import { parseFlags } from './_flags';

/** The benchmark's own flags; every trainer flag (jobs/trainerFlags.ts, as for `streamrec train`) is accepted too. */
const OWN = ['model', 'artifacts', 'name', 'dataset', 'out', 'checkpoints'];
const KNOWN = new Set([...OWN, ...trainerFlagNames()]);

const fmt = (x: number | undefined): string => (x === undefined ? '-' : x.toFixed(4));

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const flags = parseFlags(args, KNOWN);
  const defaults = AppConfig.parse({});
  const modelType = modelTypeOf(defaults.trainer, flags.get('model') ?? 'ccfrec');
  const config = trainerConfigFromFlags(defaults.trainer, modelType, Object.fromEntries([...flags].filter(([k]) => !OWN.includes(k))));
  const given = flags.get('artifacts');

  const datasetName = flags.get('dataset') ?? 'scientific';
  const dataset = await loadDataset(datasetName);
  const name = flags.get('name') ?? modelType;
  const log = (line: string): void => void process.stderr.write(`[${name} ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
  const scratch = given ? undefined : mkdtempSync(path.join(tmpdir(), 'streamrec-bench-quality-'));
  const artifactsDir = given ?? path.join(scratch as string, 'artifacts');
  try {
    const store = new ArtifactStore(artifactsDir);
    if (!given) {
      log('rebuilding side information with the defaults (GloVe-SIF, PCA 64, RQ-KMeans 4 x 256)');
      await defaultRebuild(dataset, store, scratch as string);
    }
    log(`model ${JSON.stringify(config.model)} train ${JSON.stringify(config.train)}`);

    const epochs: EpochRow[] = [];
    const valid: Array<{ epoch: number; metrics: Record<string, number> }> = [];
    const observer: TrainingObserver = {
      runStarted: (run) => log(`${modelType}: artifacts ${artifactsDir} (${JSON.stringify(run.artifacts)})`),
      epochEnded: (row) => {
        epochs.push(row);
        const loss = Object.entries(row.loss).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ');
        log(`epoch ${row.epoch}: ${row.durationSeconds.toFixed(1)} s (${Math.round(row.samplesPerSecond)}/s), lr ${row.learningRate.toExponential(2)}, ${loss}`);
      },
      evaluated: (rows: readonly EvaluationRow[]) => {
        // One line per split; the text prior's rows (valid and test together) are labelled and kept out of the curve.
        for (const split of ['valid', 'test'] as const) {
          const part = rows.filter((r) => r.split === split);
          const first = part[0];
          if (!first) continue;
          const metrics = Object.fromEntries(part.map((r) => [`${r.metric}@${r.k}`, r.value]));
          if (split === 'valid' && !first.textPrior) valid.push({ epoch: first.epoch, metrics });
          const label = first.textPrior ? ` + text prior (w ${first.textPrior.weight}, ${first.textPrior.pooling}, last ${first.textPrior.lastItems})` : '';
          log(
            `${split} epoch ${first.epoch}${label}: R@10 ${fmt(metrics['recall@10'])} N@10 ${fmt(metrics['ndcg@10'])} ` +
              `R@50 ${fmt(metrics['recall@50'])} N@50 ${fmt(metrics['ndcg@50'])}`,
          );
        }
      },
      runEnded: () => undefined,
    };

    const started = Date.now();
    // The train job, on the store's side information (SASRec gets the same id mapping as CCFRec).
    const result = await runTrainJob({
      config: AppConfig.parse({ artifacts: { dir: artifactsDir, registryFile: path.join(artifactsDir, 'item-registry.json') } }),
      trainer: config,
      source: { kind: 'dataset', dataset: datasetName },
      dataset,
      writeRows: false,
      observer,
      checkpointStore: flags.has('checkpoints') ? new ArtifactStore(flags.get('checkpoints') as string) : null,
    });
    const sideInfo = result.artifacts?.sideInfo;
    const seconds = result.fit.history.map((e) => e.durationSeconds);
    const pick = (m: Record<string, number>): Record<string, number> =>
      Object.fromEntries(
        ['recall@5', 'recall@10', 'recall@20', 'recall@50', 'ndcg@5', 'ndcg@10', 'ndcg@20', 'ndcg@50', 'mrr@10', 'mrr@50'].map((k) => [k, m[k] as number]),
      );
    const summary = {
      name,
      command: `npm run bench -- quality ${args.join(' ')}`,
      model: modelType,
      artifacts: { dir: given ?? '(fresh default rebuild)', semanticIds: sideInfo?.artifactIds.semanticIds, textEmbeddings: sideInfo?.artifactIds.textEmbeddings, levels: sideInfo?.codes.levels, codesPerLevel: sideInfo?.codes.codesPerLevel },
      data: result.data,
      backend: result.backend,
      status: result.fit.status,
      epochs: result.fit.epochs,
      bestEpoch: result.fit.bestEpoch,
      skippedSteps: result.fit.skippedSteps,
      meanEpochSeconds: seconds.reduce((a, b) => a + b, 0) / Math.max(1, seconds.length),
      epochSeconds: seconds.map((s) => Number(s.toFixed(1))),
      epochLoss: result.fit.history.map((e) => Object.fromEntries(Object.entries(e.loss).map(([k, v]) => [k, Number(v.toFixed(4))]))),
      validCurve: valid.map((v) => ({ epoch: v.epoch, r10: Number((v.metrics['recall@10'] ?? 0).toFixed(4)), n10: Number((v.metrics['ndcg@10'] ?? 0).toFixed(4)) })),
      wallSeconds: (Date.now() - started) / 1000,
      excludeHistory: result.test.excludeHistory,
      ...(result.checkpointId ? { checkpointId: result.checkpointId } : {}),
      valid: pick(result.fit.bestValid),
      test: pick(result.test.metrics),
      validAll: result.fit.bestValid,
      testAll: result.test.metrics,
      ...(result.textPrior
        ? { textPrior: { weight: result.textPrior.weight, lastItems: result.textPrior.lastItems, pooling: result.textPrior.pooling, curve: result.textPrior.curve, valid: pick(result.textPrior.valid.metrics), test: pick(result.textPrior.test.metrics) } }
        : {}),
      config: result.config,
    };
    log(
      `done: ${summary.status} after ${summary.epochs} epochs, best ${summary.bestEpoch}; test R@5 ${fmt(summary.test['recall@5'])} ` +
        `R@10 ${fmt(summary.test['recall@10'])} N@5 ${fmt(summary.test['ndcg@5'])} N@10 ${fmt(summary.test['ndcg@10'])} ` +
        `R@50 ${fmt(summary.test['recall@50'])} N@50 ${fmt(summary.test['ndcg@50'])}`,
    );
    if (summary.textPrior) {
      const t = summary.textPrior.test;
      log(`text prior weight ${summary.textPrior.weight} (${summary.textPrior.pooling}, last ${summary.textPrior.lastItems}): test R@5 ${fmt(t['recall@5'])} R@10 ${fmt(t['recall@10'])} N@5 ${fmt(t['ndcg@5'])} N@10 ${fmt(t['ndcg@10'])}`);
    }
    const out = flags.get('out');
    if (out) writeFileSync(out, `${JSON.stringify(summary)}\n`);
    return summary;
  } finally {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }
}
