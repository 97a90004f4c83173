import type { IncrementalExperimentResult, IncrementalMethodSummary } from '../trainer';
import { summarizeIncremental } from './incremental';

const method = (ndcg: number, trainSeconds: number, trainSamples: number): IncrementalMethodSummary => ({ metrics: { 'ndcg@10': ndcg, 'recall@10': ndcg * 2 }, examples: 100, trainSeconds, trainSamples });
const result = (methods: IncrementalExperimentResult['methods']): IncrementalExperimentResult => ({
  dataset: 'ml-100k', model: 'sasrec', events: 1000, trainEvents: 800, streamEvents: 200, windows: 4, firstModelSeconds: 10, firstModelEpochs: 5, firstModelBestEpoch: 3, methods, rows: [],
});

describe('summarizeIncremental (the benchmark\'s last line)', () => {
  it('gives the issue\'s keys and the ratios between the methods', () => {
    const summary = summarizeIncremental(result({ static: method(0.04, 0, 0), micro: method(0.05, 5, 1000), retrain: method(0.048, 100, 40_000) }));
    expect(summary).toEqual({
      dataset: 'ml-100k', model: 'sasrec', windows: 4, stream_events: 200,
      static: { 'ndcg@10': 0.04, 'recall@10': 0.08 },
      micro: { 'ndcg@10': 0.05, 'recall@10': 0.1, train_s: 5, train_samples: 1000 },
      retrain: { 'ndcg@10': 0.048, 'recall@10': 0.096, train_s: 100, train_samples: 40_000 },
      micro_vs_retrain_ndcg: 1.0417, micro_compute_share: 0.05, micro_sample_share: 0.025, micro_vs_static_ndcg: 1.25,
    });
  });

  it('keeps every ratio key, null where a method it needs was not run', () => {
    const summary = summarizeIncremental(result({ static: method(0.04, 0, 0), micro: method(0.05, 5, 1000) }));
    expect(summary.retrain).toBeUndefined();
    expect([summary.micro_vs_retrain_ndcg, summary.micro_compute_share, summary.micro_sample_share, summary.micro_vs_static_ndcg]).toEqual([null, null, null, 1.25]);
    expect(JSON.parse(JSON.stringify(summary))).toHaveProperty('micro_vs_retrain_ndcg', null);
  });
});
