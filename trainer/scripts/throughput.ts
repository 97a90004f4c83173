/**
 * Training throughput of SASRec and CCFRec at the benchmark batch size on Amazon Scientific.
 * `node --import tsx trainer/scripts/throughput.ts [steps] [batchSize]`. CCFRec runs on
 * TEMPORARY side information (see temporarySideInfo.ts): the speed is representative, the
 * quality is not. Prints one JSON line.
 */
import { initTf } from '../../infra/tf';
import { loadDataset } from '../../ingest/datasets';
import { Random } from '../../random';
import { buildTemporarySideInfo, createModel, itemIdMappingFromList, leaveOneOutSplit, parseModelConfig } from '..';
import { measureTrainingThroughput } from '../throughput';

async function main(): Promise<void> {
  const steps = Number(process.argv[2] ?? 20);
  const batchSize = Number(process.argv[3] ?? 256);
  const which = (process.argv[4] ?? 'sasrec,ccfrec').split(',');
  const backend = await initTf();
  const dataset = await loadDataset('scientific');
  const mapping = itemIdMappingFromList(dataset.items.map((i) => i.itemId));
  const data = leaveOneOutSplit(dataset, mapping);
  const out: Record<string, unknown> = { backend: backend.backend, batchSize, steps };
  for (const type of which as Array<'sasrec' | 'ccfrec'>) {
    const config = parseModelConfig({ type });
    const sideInfo = type === 'ccfrec' ? buildTemporarySideInfo(dataset, mapping, { dims: config.embeddingSize, levels: 4, codesPerLevel: 256, seed: 1 }) : undefined;
    const model = createModel(config, { itemCount: data.itemCount, ...(sideInfo ? { sideInfo } : {}) }, new Random(1));
    const result = measureTrainingThroughput(model, data.train, { batchSize, maxHistoryLength: config.maxHistoryLength, steps, warmupSteps: 3, rng: new Random(2) });
    out[type] = { stepsPerSecond: +result.stepsPerSecond.toFixed(2), samplesPerSecond: Math.round(result.samplesPerSecond), loss: result.loss };
    model.dispose();
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
