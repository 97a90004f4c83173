/**
 * Values by key, each held weakly: what several holders load alike (the tables of one catalog,
 * loaded again for every checkpoint of it) is shared while one of them still holds it, and the
 * sharing does not keep it alive. Keys whose value was collected are dropped at the next `set`.
 */
export class WeakValues<V extends object> {
  private readonly refs = new Map<string, WeakRef<V>>();

  /** The value set for `key`, or undefined when none was or it has been collected since. */
  get(key: string): V | undefined {
    return this.refs.get(key)?.deref();
  }

  set(key: string, value: V): V {
    for (const [k, ref] of this.refs) if (!ref.deref()) this.refs.delete(k);
    this.refs.set(key, new WeakRef(value));
    return value;
  }
}
