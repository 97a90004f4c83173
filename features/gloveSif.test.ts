import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatasetError } from '../errors';
import { Random } from '../random';
import { datasetsRoot, loadDataset } from '../datasets';
import { ensureGloveCache, loadGloveTable } from './glove';
import { gloveSifSpec } from './gloveSif';
import { cosineSimilarity, rowOf } from '../infra/matrix';
import { readWinkWordVectors } from './winkJson';
import { cleanText } from './cleanText';
import { describeWithDatasets } from '../datasets/testing/realDatasets';

const DATASETS = datasetsRoot();

/** A tiny file in the package's layout, with the awkward parts of JSON in it. */
const TINY = `{"precision":8, "l2NormIndex":3,"wordIndex":4,
  "words":["the","vectors","\\"","caf\\u00e9"],
  "unkVector":[0,0,0,-1],
  "dimensions" : 3, "size":4,
  "vectors":{
    "the":[-0.038194,0.5,1e-3,0.62,0],
    "vectors":[1.5E+2, -2.25e-1, 0, 150.2,1],
    "\\"": [ 0.000001 , -0 , 12345678.5, 1, 2 ],
    "caf\\u00e9":[3,2,1,3.7,3]
  },
  "extra":{"nested":[true,false,null,{"a":"b\\\\"}]}
}`;

let tmp: string;
beforeEach(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'streamrec-glove-'));
});
afterEach(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('readWinkWordVectors (streaming JSON)', () => {
  it('reads words and vectors exactly as JSON.parse, across any chunk boundary', async () => {
    const file = path.join(tmp, 'tiny.json');
    await fs.writeFile(file, TINY);
    const parsed = JSON.parse(TINY) as { vectors: Record<string, number[]> };
    const words = Object.keys(parsed.vectors);
    const expected = Float32Array.from(words.flatMap((w) => parsed.vectors[w]!.slice(0, 3)));
    for (const chunkBytes of [7, 64, 1 << 20]) {
      const out = await readWinkWordVectors(file, { chunkBytes });
      expect(out.dims).toBe(3);
      expect(out.words).toEqual(['the', 'vectors', '"', 'café']);
      expect(Array.from(out.vectors)).toEqual(Array.from(expected));
    }
  });

  it('rejects truncated and inconsistent files with the byte offset', async () => {
    const file = path.join(tmp, 'bad.json');
    await fs.writeFile(file, TINY.slice(0, 200));
    await expect(readWinkWordVectors(file, { chunkBytes: 32 })).rejects.toThrow(DatasetError);
    await expect(readWinkWordVectors(file)).rejects.toThrow(/unexpected end of file at byte 200/);
    await fs.writeFile(file, TINY.replace('"size":4', '"size":5'));
    await expect(readWinkWordVectors(file)).rejects.toThrow(/"size" says 5 words, "vectors" holds 4/);
    await fs.writeFile(file, TINY.replace('"the":[-0.038194', '"the":[x'));
    await expect(readWinkWordVectors(file)).rejects.toThrow(/expected a number/);
  });
});

describe('GloVe binary cache', () => {
  it('is written once, reused, and rebuilt when corrupted', async () => {
    const sourceFile = path.join(tmp, 'tiny.json');
    await fs.writeFile(sourceFile, TINY);
    const cacheDir = path.join(tmp, 'cache');
    const info = await ensureGloveCache({ cacheDir, sourceFile });
    expect(info).toMatchObject({ rows: 4, dims: 3 });
    const files = (await fs.readdir(info.dir)).sort();
    expect(files).toEqual(['meta.json', 'vectors.f32', 'vocab.txt']);
    const vectorsFile = path.join(info.dir, 'vectors.f32');
    expect((await fs.stat(vectorsFile)).size).toBe(4 * 3 * 4);
    const before = (await fs.stat(vectorsFile)).mtimeMs;
    expect((await ensureGloveCache({ cacheDir, sourceFile })).vectorsSha256).toBe(info.vectorsSha256);
    expect((await fs.stat(vectorsFile)).mtimeMs).toBe(before);

    const table = await loadGloveTable({ cacheDir, sourceFile });
    expect(table.index.get('café')).toBe(3);
    expect(Array.from(table.vectors.subarray(3, 6))).toEqual([150, -0.22499999403953552, 0]);

    const bytes = await fs.readFile(vectorsFile);
    bytes[5] = bytes[5]! ^ 0xff;
    await fs.writeFile(vectorsFile, bytes);
    const rebuilt = await loadGloveTable({ cacheDir, sourceFile });
    expect(Array.from(rebuilt.vectors)).toEqual(Array.from(table.vectors));
  });
});

describeWithDatasets('scientific')('glove-sif with the real GloVe vectors', () => {
  // Uses the shared cache ($STREAMREC_CACHE_DIR or ~/.cache/streamrec); the first run converts
  // the package's JSON (a few seconds), later runs only load the binary.
  let corpusPromise: Promise<string[]>;
  beforeAll(() => {
    corpusPromise = loadDataset(path.join(DATASETS, 'scientific')).then(({ items: events }) => events.map((e) => cleanText(e.meta)));
  });

  it('places near-duplicate titles closer than unrelated ones, with catalog word frequencies', async () => {
    const spec = await gloveSifSpec({ a: 1e-3, removeComponents: 1 });
    const corpus = await corpusPromise;
    const encoder = await spec.fit(corpus, new Random(1));
    expect(encoder.dims).toBe(100);
    const triples: Array<[string, string, string]> = [
      [
        'PORTER-CABLE 740000801 4 1/2-Inch x 10yd 80 Grit Adhesive-Backed Sanding Roll.',
        'PORTER-CABLE 740001201 4 1/2-Inch by 10yd 120 Grit Adhesive-Backed Sanding Roll.',
        'Gorilla Original Gorilla Glue, Waterproof Polyurethane Glue, 8 ounce Bottle, Brown.',
      ],
      [
        'Disposable nitrile examination gloves, powder free, large, box of 100.',
        'Nitrile exam gloves, powder-free, size large, 100 per box.',
        'Digital caliper with stainless steel jaws and LCD display.',
      ],
      [
        'Laboratory glass beaker set, 50 ml to 1000 ml, borosilicate.',
        'Borosilicate glass beakers for the lab, 5 sizes from 50ml to 1000ml.',
        'Heavy duty cordless drill with two lithium batteries.',
      ],
    ];
    const out = await encoder.encode(triples.flat());
    for (let t = 0; t < triples.length; t++) {
      const near = cosineSimilarity(rowOf(out, 3 * t), rowOf(out, 3 * t + 1));
      const far = cosineSimilarity(rowOf(out, 3 * t), rowOf(out, 3 * t + 2));
      expect(near).toBeGreaterThan(far + 0.2);
    }
    await spec.dispose();
  });

  it('gives zero rows for texts without known words and restores from its state', async () => {
    const spec = await gloveSifSpec({ a: 1e-3, removeComponents: 1 });
    const corpus = (await corpusPromise).slice(0, 300);
    const fitted = await spec.fit(corpus, new Random(1));
    const zeros = await fitted.encode(['', '实验室移液器.', 'xqzv zzqx.']);
    expect(Array.from(zeros.data).every((v) => v === 0)).toBe(true);

    const state = fitted.state();
    expect(state.arrays.components).toMatchObject({ rows: 1, cols: 100 });
    const restored = await spec.restore({ ...state, params: JSON.parse(JSON.stringify(state.params)) as Record<string, unknown> });
    expect(restored.fingerprint()).toBe(fitted.fingerprint());
    const texts = [...corpus.slice(0, 5), 'A brand new item: café grade stainless tweezers.'];
    expect(Array.from((await restored.encode(texts)).data)).toEqual(Array.from((await fitted.encode(texts)).data));

    // The common component is removed: encodings have no projection on it.
    const enc = await fitted.encode(corpus.slice(0, 20));
    const u = rowOf(state.arrays.components!, 0);
    for (let r = 0; r < enc.rows; r++) {
      let dot = 0;
      for (let j = 0; j < 100; j++) dot += enc.data[r * 100 + j]! * u[j]!;
      expect(Math.abs(dot)).toBeLessThan(1e-5);
    }
    await spec.dispose();
  });
});
