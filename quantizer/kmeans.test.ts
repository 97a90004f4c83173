import { initTf, tf } from '../infra/tf';
import { Random } from '../random';
import { kmeans, kmeansPlusPlus, type Matrix } from './index';

/** `sizes[c]` points around `centers[c]` with Gaussian noise of std `std`. */
function blobs(centers: number[][], sizes: number[], std: number, seed: number): { x: Matrix; labels: Int32Array } {
  const rng = new Random(seed);
  const d = centers[0]!.length;
  const rows = sizes.reduce((a, b) => a + b, 0);
  const data = new Float32Array(rows * d);
  const labels = new Int32Array(rows);
  let r = 0;
  centers.forEach((center, c) => {
    for (let i = 0; i < sizes[c]!; i++, r++) {
      labels[r] = c;
      for (let j = 0; j < d; j++) data[r * d + j] = center[j]! + std * rng.normal();
    }
  });
  return { x: { data, rows, cols: d }, labels };
}

function randomCenters(k: number, d: number, scale: number, seed: number): number[][] {
  const rng = new Random(seed);
  return Array.from({ length: k }, () => Array.from({ length: d }, () => scale * rng.normal()));
}

describe('kmeans', () => {
  beforeAll(async () => {
    await initTf();
  });

  it('recovers well-separated clusters exactly (partition and centers)', async () => {
    const centers = randomCenters(6, 8, 10, 11);
    const { x, labels } = blobs(centers, [40, 80, 120, 60, 100, 50], 0.3, 12);
    const result = await kmeans(x, 6, {}, new Random(5));
    // Every found cluster holds exactly one true cluster (a bijection of labels).
    const map = new Map<number, number>();
    for (let r = 0; r < x.rows; r++) {
      const found = result.assignments[r]!;
      if (!map.has(found)) map.set(found, labels[r]!);
      expect(map.get(found)).toBe(labels[r]);
    }
    expect(new Set(map.values()).size).toBe(6);
    for (const [found, truth] of map) {
      let dist = 0;
      for (let j = 0; j < 8; j++) dist += (result.centroids.data[found * 8 + j]! - centers[truth]![j]!) ** 2;
      expect(Math.sqrt(dist)).toBeLessThan(0.2); // mean of >= 40 points with std 0.3 per dimension
    }
    expect(result.inertia / x.rows).toBeCloseTo(8 * 0.09, 1);
  });

  it('refills an empty cluster (a centroid that no row is nearest to) and then finds all clusters', async () => {
    const { x, labels } = blobs([[0, 0], [10, 0], [-10, 0]], [50, 50, 50], 0.2, 3);
    const initialCentroids: Matrix = { data: Float32Array.from([0, 0.1, 0, -0.1, 1000, 1000]), rows: 3, cols: 2 };
    const result = await kmeans(x, 3, { tolerance: 0, iterations: 10 }, new Random(1), { initialCentroids });
    expect(result.repairedClusters).toBeGreaterThanOrEqual(1);
    const purity = new Map<number, Set<number>>();
    for (let r = 0; r < x.rows; r++) {
      const set = purity.get(result.assignments[r]!) ?? new Set<number>();
      set.add(labels[r]!);
      purity.set(result.assignments[r]!, set);
    }
    expect(purity.size).toBe(3);
    for (const set of purity.values()) expect(set.size).toBe(1);
  });

  it('stays finite when there are fewer distinct rows than clusters', async () => {
    const base = [0, 0, 1, 1, 5, 5];
    const data = Float32Array.from({ length: 60 }, (_, i) => base[i % 6]!);
    const result = await kmeans({ data, rows: 30, cols: 2 }, 5, {}, new Random(2));
    expect(Array.from(result.centroids.data).every(Number.isFinite)).toBe(true);
    expect(result.inertia).toBeCloseTo(0, 6);
  });

  it('balanced assignment never exceeds the capacity, even on skewed data', async () => {
    const { x } = blobs([[0, 0], [8, 8], [-8, 8]], [300, 60, 40], 1, 4);
    const k = 8;
    const result = await kmeans(x, k, {}, new Random(3), { balanced: { capacitySlack: 0 } });
    const counts = new Array<number>(k).fill(0);
    for (const c of result.assignments) counts[c]!++;
    expect(Math.max(...counts)).toBeLessThanOrEqual(x.rows / k);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(x.rows);
    const plain = await kmeans(x, k, {}, new Random(3));
    const plainCounts = new Array<number>(k).fill(0);
    for (const c of plain.assignments) plainCounts[c]!++;
    expect(Math.max(...plainCounts)).toBeGreaterThan(x.rows / k); // the skew is real
  });

  it('is deterministic for a fixed seed and leaks no tensors', async () => {
    const { x } = blobs(randomCenters(10, 4, 3, 8), new Array<number>(10).fill(30), 1, 9);
    await kmeans(x, 16, {}, new Random(1)); // warm up the backend's one-time allocations
    const before = tf.memory().numTensors;
    const a = await kmeans(x, 16, {}, new Random(42));
    const b = await kmeans(x, 16, {}, new Random(42));
    const c = await kmeans(x, 16, {}, new Random(43));
    const balanced = await kmeans(x, 16, {}, new Random(42), { balanced: { capacitySlack: 0.1 } });
    expect(tf.memory().numTensors).toBe(before);
    expect(Array.from(a.centroids.data)).toEqual(Array.from(b.centroids.data));
    expect(Array.from(a.assignments)).toEqual(Array.from(b.assignments));
    expect(Array.from(a.centroids.data)).not.toEqual(Array.from(c.centroids.data));
    expect(balanced.assignments.length).toBe(x.rows);
  });

  it('rejects invalid k-means settings with a ConfigError naming the key', async () => {
    const { x } = blobs([[0, 0]], [10], 1, 1);
    await expect(kmeans(x, 2, { iterations: 0 }, new Random(1))).rejects.toThrow(/kmeans settings: invalid iterations.*received number 0/);
    await expect(kmeans(x, 11, {}, new Random(1))).rejects.toThrow(
      /kmeans: k = 11 needs at least 11 training rows \(one per centroid\); received a matrix with 10 rows/,
    );
  });

  it.each([
    ['in JS (small pool)', 8],
    ['on the backend (large pool)', 160],
  ])('k-means++ seeds one row per well-separated cluster (nearly always) %s', (_path, d) => {
    const { x, labels } = blobs(randomCenters(8, d, 10, 21), [300, 250, 250, 250, 250, 250, 250, 200], 0.3, 22);
    // D^2 sampling picks a second seed in an already seeded cluster with probability < 1% per step.
    let covered = 0;
    for (let trial = 0; trial < 10; trial++) {
      const seeds = kmeansPlusPlus(x, 8, 1000, new Random(100 + trial));
      const seededLabels = new Set<number>();
      for (let j = 0; j < 8; j++) {
        const seed = seeds.data.subarray(j * d, (j + 1) * d);
        const row = Array.from({ length: x.rows }, (_, r) => r).find((r) => x.data.subarray(r * d, (r + 1) * d).every((v, i) => v === seed[i]));
        expect(row).toBeDefined(); // seeds are rows of the data
        seededLabels.add(labels[row!]!);
      }
      if (seededLabels.size === 8) covered++;
    }
    expect(covered).toBeGreaterThanOrEqual(9);
  });

  it('trains on a sample of k * maxPointsPerCentroid rows but assigns every row', async () => {
    const { x } = blobs(randomCenters(4, 3, 5, 1), [100, 100, 100, 100], 0.5, 2);
    const result = await kmeans(x, 4, { maxPointsPerCentroid: 10 }, new Random(1));
    expect(result.assignments.length).toBe(400);
    expect(new Set(result.assignments).size).toBe(4);
  });
});
