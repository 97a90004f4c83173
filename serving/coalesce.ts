interface Waiting<In, Out> {
  readonly input: In;
  readonly resolve: (output: Out) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Runs the inputs of concurrent callers together: inputs submitted in the same event-loop turn
 * (up to `maxRows` rows) go to `run` as one call, and each caller gets its own output. Under load
 * one engine call then serves several requests (an ONNX session run costs about the same for 1
 * row as for a few); alone, a caller waits for nothing but the end of the current turn.
 *
 * An input of `maxRows` rows or more, or one that `joinable` refuses, runs alone. A failure of
 * `run` fails every caller of that call.
 */
export class Coalescer<In, Out> {
  private waiting: Waiting<In, Out>[] = [];
  private rowsWaiting = 0;
  /** Calls of `run` made, and the inputs they served (for tests and metrics). */
  calls = 0;
  inputs = 0;

  constructor(
    /** Runs several inputs at once: one output per input, in order. */
    private readonly run: (inputs: readonly In[]) => Promise<Out[]>,
    private readonly rowsOf: (input: In) => number,
    private readonly maxRows = 64,
    private readonly joinable: (input: In) => boolean = () => true,
  ) {}

  submit(input: In): Promise<Out> {
    const rows = this.rowsOf(input);
    if (rows >= this.maxRows || !this.joinable(input)) return this.runAll([input]).then(([output]) => output as Out);
    return new Promise<Out>((resolve, reject) => {
      if (this.waiting.length === 0) setImmediate(() => this.flush());
      this.waiting.push({ input, resolve, reject });
      this.rowsWaiting += rows;
      if (this.rowsWaiting >= this.maxRows) this.flush();
    });
  }

  private flush(): void {
    const waiting = this.waiting;
    if (waiting.length === 0) return;
    this.waiting = [];
    this.rowsWaiting = 0;
    this.runAll(waiting.map((w) => w.input)).then(
      (outputs) => waiting.forEach((w, i) => w.resolve(outputs[i] as Out)),
      (error: unknown) => waiting.forEach((w) => w.reject(error)),
    );
  }

  private async runAll(inputs: readonly In[]): Promise<Out[]> {
    this.calls++;
    this.inputs += inputs.length;
    const outputs = await this.run(inputs);
    if (outputs.length !== inputs.length) throw new Error(`coalescer: ${outputs.length} outputs for ${inputs.length} inputs`);
    return outputs;
  }
}
