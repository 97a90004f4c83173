import { Instrumentation } from '../instrumentation';
import type { RebuildJobResult, TrainJobResult } from '../jobs';
import { printTable } from './table';
import { progressBar } from './progress';

/**
 * What a person sees of a job: progress bars drawn from the job's instrumentation events
 * (`rebuild.progress`, `trainer.progress`) and tables of its results.
 */
export interface JobProgress {
  readonly instrumentation: Instrumentation;
  /** Stops the bar in flight and the listeners. */
  stop(): void;
}

/** An instrumentation whose rebuild and training progress events draw bars on stderr. */
export function jobProgress(instrumentation: Instrumentation = new Instrumentation()): JobProgress {
  let bar: ReturnType<typeof progressBar> | undefined;
  let key = '';
  const switchTo = (next: string, label: string, total: number, unit: string): void => {
    if (next === key) return;
    bar?.stop();
    key = next;
    bar = progressBar(label, total, unit);
  };
  const offs = [
    instrumentation.on('rebuild.progress', ({ step, done, total }) => {
      switchTo(`rebuild:${step}`, step.padEnd(16), total, step === 'cache' ? 'bytes' : 'items');
      bar?.update(done);
    }),
    instrumentation.on('trainer.progress', (p) => {
      switchTo(`${p.phase}:${p.epoch}`, p.phase === 'train' ? `epoch ${p.epoch + 1}/${p.epochs}` : 'evaluate    ', p.steps, p.phase === 'train' ? 'steps' : 'users');
      bar?.update(p.step, {
        ...(p.loss !== undefined ? { loss: p.loss.toFixed(4) } : {}),
        ...(p.samplesPerSecond !== undefined ? { 'samples/s': Math.round(p.samplesPerSecond) } : {}),
      });
    }),
  ];
  return {
    instrumentation,
    stop: () => {
      bar?.stop();
      bar = undefined;
      key = '';
      for (const off of offs) off();
    },
  };
}

/** Prints Recall / NDCG / MRR / Hit by K as a table. */
export function printMetrics(metrics: Readonly<Record<string, number>>, label: string, out: NodeJS.WritableStream = process.stdout): void {
  const ks = [...new Set(Object.keys(metrics).map((m) => Number(m.split('@')[1])))].sort((a, b) => a - b);
  printTable(
    ks.map((k) => ({
      [label]: `@${k}`,
      recall: (metrics[`recall@${k}`] ?? NaN).toFixed(4),
      ndcg: (metrics[`ndcg@${k}`] ?? NaN).toFixed(4),
      mrr: (metrics[`mrr@${k}`] ?? NaN).toFixed(4),
      hit: (metrics[`hit@${k}`] ?? NaN).toFixed(4),
    })),
    out,
  );
}

/** The run's summary and its test metrics (with the tuned text prior's, when one was tuned). */
export function printTrainResult(result: TrainJobResult, out: NodeJS.WritableStream = process.stdout): void {
  out.write(`\n${result.config.model.type} on ${result.data.name} (${result.data.protocol}), run ${result.runId}\n`);
  out.write(`  backend ${result.backend}; ${result.data.itemCount} items; train ${result.data.train}, valid ${result.data.valid}, test ${result.data.test}\n`);
  out.write(`  ${result.fit.status} after ${result.fit.epochs} epochs; best epoch ${result.fit.bestEpoch + 1}; checkpoint ${result.checkpointId ?? '(none)'}\n`);
  if (result.fit.skippedSteps > 0) out.write(`  ${result.fit.skippedSteps} steps skipped (gradients not finite)\n`);
  out.write(`  full ranking over all items; history items ${result.config.eval.excludeHistory ? 'excluded' : 'kept rankable'}\n\n`);
  printMetrics(result.test.metrics, 'test', out);
  const ks = result.config.eval.ks;
  const k = ks.includes(10) ? 10 : (ks[0] as number);
  const pop = result.popularity.metrics;
  out.write(`\n  the popularity baseline on the same split: recall@${k} ${(pop[`recall@${k}`] ?? NaN).toFixed(4)}, ndcg@${k} ${(pop[`ndcg@${k}`] ?? NaN).toFixed(4)}\n`);
  const prior = result.textPrior;
  if (prior) {
    const alone = prior.curve[0]?.value ?? NaN;
    out.write(
      prior.weight > 0
        ? `\n  text prior: weight ${prior.weight}, ${prior.pooling} over the last ${prior.lastItems} items, chosen by valid ${prior.metric} among ${prior.curve.length - 1} settings ` +
            `(${prior.valid.metrics[prior.metric]?.toFixed(4)}; the model alone ${alone.toFixed(4)})\n\n`
        : `\n  text prior: none of ${prior.curve.length - 1} settings beat the model alone on valid ${prior.metric} (${alone.toFixed(4)})\n\n`,
    );
    printMetrics(prior.test.metrics, 'test + text prior', out);
  }
}

/** The rebuild's outputs: one table row per quantizer fitted, or the new items coded. */
export function printRebuild(job: RebuildJobResult, out: NodeJS.WritableStream = process.stdout): void {
  if (job.kind === 'new-items') {
    const coded = job.coded;
    out.write(
      coded
        ? `coded ${coded.newItems} new items with the existing codebooks (${coded.items} items): ${coded.semanticIds.id} (v${coded.semanticIds.manifest.version}), embeddings ${coded.embeddings.id}\n`
        : 'no new items since the last rebuild\n',
    );
    return;
  }
  const { result } = job;
  out.write(`\nrebuild: ${result.items} items, fields ${result.fields.join(', ')}, ${job.seconds.toFixed(1)} s\n`);
  out.write(`  embeddings ${result.embeddings.id} (v${result.embeddings.manifest.version}), pca ${result.pca.id}\n\n`);
  printTable(
    result.builds.map((b) => ({
      method: b.quantizer.kind,
      codebooks: `${b.quantizer.levels} x ${b.quantizer.codesPerLevel}`,
      train_s: b.trainSeconds.toFixed(2),
      rel_mse: (b.metrics.relMse ?? NaN).toFixed(4),
      codes_used: `${(b.metrics.meanFractionUsed * 100).toFixed(1)}%`,
      perplexity: b.metrics.meanPerplexity.toFixed(1),
      collisions: `${(b.metrics.collisionRate * 100).toFixed(2)}%`,
      semantic_ids: `${b.semanticIds.id} (v${b.semanticIds.manifest.version})`,
    })),
    out,
  );
}
