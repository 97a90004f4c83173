/**
 * The `k` largest entries of `scores[from..]` as indices, best first (ties: lower index first),
 * skipping NaN and -Infinity; O(n log k) with a min-heap, no sort of the whole array.
 */
export function topK(scores: ArrayLike<number>, k: number, from = 0): number[] {
  if (k <= 0) return [];
  const heap: number[] = []; // indices; heap[0] is the worst kept
  const worse = (a: number, b: number): boolean => {
    const sa = scores[a] as number;
    const sb = scores[b] as number;
    return sa < sb || (sa === sb && a > b);
  };
  const down = (i: number): void => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && worse(heap[l] as number, heap[m] as number)) m = l;
      if (r < heap.length && worse(heap[r] as number, heap[m] as number)) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m] as number, heap[i] as number];
      i = m;
    }
  };
  for (let i = from; i < scores.length; i++) {
    const s = scores[i] as number;
    if (Number.isNaN(s) || s === Number.NEGATIVE_INFINITY) continue;
    if (heap.length < k) {
      heap.push(i);
      for (let j = heap.length - 1; j > 0; ) {
        const p = (j - 1) >> 1;
        if (!worse(heap[j] as number, heap[p] as number)) break;
        [heap[j], heap[p]] = [heap[p] as number, heap[j] as number];
        j = p;
      }
    } else if (worse(heap[0] as number, i)) {
      heap[0] = i;
      down(0);
    }
  }
  return heap.sort((a, b) => (worse(a, b) ? 1 : worse(b, a) ? -1 : 0));
}
