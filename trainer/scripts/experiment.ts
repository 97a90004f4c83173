/**
 * Runs one training experiment and prints its summary as one JSON line (the lead wires the
 * `streamrec train` command to trainAndEvaluate; this script is for runs by hand):
 *
 *   node --import tsx trainer/scripts/experiment.ts '<trainer config JSON>' [dataset] [storeDir] [--temporary-side-info]
 *
 * e.g. `'{"model":{"type":"sasrec"},"train":{"timeBudgetSeconds":1200}}' scientific /tmp/ckpt`.
 * `--temporary-side-info` builds the TEMPORARY stand-in side information (temporarySideInfo.ts)
 * for CCFRec until features/ and quantizer/ land: its CCFRec numbers are not CCFRec's quality.
 */
import { ArtifactStore } from '../../infra/artifacts';
import { loadDataset } from '../../ingest/datasets';
import { buildTemporarySideInfo, itemIdMappingFromList, parseTrainerConfig, trainAndEvaluate } from '..';

async function main(): Promise<void> {
  const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const flags = new Set(process.argv.slice(2).filter((a) => a.startsWith('--')));
  const config = parseTrainerConfig(JSON.parse(args[0] ?? '{"model":{"type":"sasrec"}}'));
  const dataset = await loadDataset(args[1] ?? 'scientific');
  const itemIds = itemIdMappingFromList(dataset.items.map((i) => i.itemId));
  const sideInfo = flags.has('--temporary-side-info')
    ? buildTemporarySideInfo(dataset, itemIds, { dims: config.model.embeddingSize, levels: 4, codesPerLevel: 256, seed: 1 })
    : undefined;
  const started = Date.now();
  const result = await trainAndEvaluate({
    dataset,
    config,
    itemIds,
    ...(sideInfo ? { sideInfo } : {}),
    ...(args[2] ? { store: new ArtifactStore(args[2]) } : {}),
  });
  const epochSeconds = result.fit.history.map((e) => e.durationSeconds);
  process.stdout.write(
    `${JSON.stringify({
      runId: result.runId,
      model: config.model.type,
      dataset: result.data,
      backend: result.backend,
      temporarySideInfo: sideInfo !== undefined,
      status: result.fit.status,
      epochs: result.fit.epochs,
      bestEpoch: result.fit.bestEpoch,
      meanEpochSeconds: epochSeconds.reduce((a, b) => a + b, 0) / Math.max(1, epochSeconds.length),
      meanSamplesPerSecond: result.fit.history.reduce((a, e) => a + e.samplesPerSecond, 0) / Math.max(1, result.fit.history.length),
      wallSeconds: (Date.now() - started) / 1000,
      excludeHistory: result.test.excludeHistory,
      valid: result.fit.bestValid,
      test: result.test.metrics,
      checkpointId: result.checkpointId,
      config: result.config,
    })}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
