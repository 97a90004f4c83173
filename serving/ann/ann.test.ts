import { ExactIndex } from './exact';
import { HnswIndex } from './hnsw';
import { loadAnnIndex } from './create';
import { describeAnnIndexContract } from './testing/contract';

// Every implementation, and the exact index with each of its two scorers forced.
describeAnnIndexContract('exact (auto scorer)', { exact: true, build: (v) => ExactIndex.build(v), load: (dir) => ExactIndex.load(dir) });
describeAnnIndexContract('exact (JS scorer)', { exact: true, build: (v) => ExactIndex.build(v, { scorer: 'js' }), load: (dir) => ExactIndex.load(dir, { scorer: 'js' }) });
describeAnnIndexContract('exact (TF.js scorer)', { exact: true, build: (v) => ExactIndex.build(v, { scorer: 'tf' }), load: (dir) => ExactIndex.load(dir, { scorer: 'tf' }) });
describeAnnIndexContract('hnsw (default settings)', { exact: false, minRecall: 0.98, build: (v) => HnswIndex.build(v), load: loadAnnIndex });
