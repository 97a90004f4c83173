import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { openLoop } from './_openLoop';

/** A server answering each request after `delayMs(i)` with status `status(i)` (i: the request's order of arrival). */
async function server(status: (i: number) => number, delayMs: (i: number) => number = () => 0): Promise<{ port: number; seen: () => number; close: () => Promise<void> }> {
  let seen = 0;
  const s = http.createServer((_req, res) => {
    const i = seen++;
    setTimeout(() => {
      const body = '{"ok":true}';
      res.writeHead(status(i), { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    }, delayMs(i));
  });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return {
    port: (s.address() as AddressInfo).port,
    seen: () => seen,
    close: () => new Promise((resolve) => s.close(() => resolve())),
  };
}

describe('openLoop', () => {
  it('sends the warm-up and the measured requests at the rate, and measures only the latter', async () => {
    const target = await server(() => 200);
    try {
      const r = await openLoop({ host: '127.0.0.1', port: target.port, path: () => '/x', rate: 200, seconds: 0.5, warmUpSeconds: 0.25, connections: 4 });
      expect(r.warmUpRequests).toBe(50);
      expect(r.offered).toBe(100);
      expect(r.completed).toBe(100);
      expect(r.latencies.length).toBe(100);
      expect(r.errors + r.non2xx).toBe(0);
      expect(target.seen()).toBe(150);
      expect(r.seconds).toBeGreaterThan(0.4);
      expect(r.seconds).toBeLessThan(2);
    } finally {
      await target.close();
    }
  });

  it('does not measure a slow warm-up: the latencies are those of the measured requests', async () => {
    // The first 20 answers (all warm-up) take 300 ms; the measured ones none.
    const target = await server(
      () => 200,
      (i) => (i < 20 ? 300 : 0),
    );
    try {
      const r = await openLoop({ host: '127.0.0.1', port: target.port, path: () => '/x', rate: 100, seconds: 0.5, warmUpSeconds: 0.2, connections: 32 });
      expect(r.warmUpRequests).toBe(20);
      expect(r.latencies.length).toBe(50);
      expect(r.latencies[r.latencies.length - 1]).toBeLessThan(200);
    } finally {
      await target.close();
    }
  });

  it('counts non-2xx answers, in the warm-up as errors, in the measured run as non2xx', async () => {
    const target = await server((i) => (i % 10 === 0 ? 500 : 200));
    try {
      const r = await openLoop({ host: '127.0.0.1', port: target.port, path: () => '/x', rate: 100, seconds: 0.5, warmUpSeconds: 0.2, connections: 1 });
      // One connection: answers arrive in order, so request i is answer i.
      expect(r.errors).toBe(2); // answers 0 and 10 of the 20 warm-up ones
      expect(r.non2xx).toBe(5); // 20, 30, 40, 50, 60
      expect(r.latencies.length).toBe(45);
    } finally {
      await target.close();
    }
  });
});
