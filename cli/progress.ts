import { SingleBar, Presets } from 'cli-progress';

/** A progress bar on stderr (hidden when stderr is not a terminal, unless STREAMREC_PROGRESS=1). */
export function progressBar(label: string, total: number, unit = 'events'): { update(done: number, extra?: Record<string, string | number>): void; stop(): void } {
  const forced = process.env.STREAMREC_PROGRESS === '1';
  if (!process.stderr.isTTY && !forced) {
    return { update: () => undefined, stop: () => undefined };
  }
  const bar = new SingleBar(
    {
      stream: process.stderr,
      format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | {rate}/s | ETA {eta_formatted}{extra}`,
      hideCursor: true,
      etaBuffer: 50,
      // Forced onto a pipe or file (logs, tests): a line per redraw, at most one a second.
      noTTYOutput: forced,
      notTTYSchedule: 1000,
    },
    Presets.shades_classic,
  );
  const started = Date.now();
  bar.start(total, 0, { rate: '0', extra: '' });
  return {
    update: (done, extra) => {
      const seconds = (Date.now() - started) / 1000;
      const text = extra ? ` | ${Object.entries(extra).map(([k, v]) => `${k} ${v}`).join(' | ')}` : '';
      bar.update(done, { rate: seconds > 0 ? Math.round(done / seconds).toLocaleString('en-US') : '0', extra: text });
    },
    stop: () => bar.stop(),
  };
}
