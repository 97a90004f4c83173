import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ArtifactError, ValidationError } from '../errors';
import { sha256 } from '../infra/artifacts';
import { ItemEvent } from '../schemas/events';
import { Catalog } from './catalog';
import { ItemRegistry } from './registry';

function item(itemId: string, ts: number, fields: Partial<ItemEvent> = {}): ItemEvent {
  return ItemEvent.parse({ itemId, ts, ...fields });
}

let tmp: string;
beforeEach(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'streamrec-catalog-'));
});
afterEach(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('ItemRegistry', () => {
  it('gives dense ids 1..N in order of first sight and never changes them', () => {
    const registry = ItemRegistry.inMemory();
    expect(registry.assign(['b', 'a', 'b'])).toEqual([1, 2, 1]);
    expect(registry.assign(['c', 'a'])).toEqual([3, 2]);
    expect(registry.externalIds()).toEqual(['b', 'a', 'c']);
    expect(registry.externalIdOf(3)).toBe('c');
    expect(() => registry.externalIdOf(0)).toThrow(ValidationError);
    expect(() => registry.externalIdOf(4)).toThrow(/\[1, 3\], got number 4/);
    expect(() => registry.assign([''])).toThrow(/non-empty string/);
  });

  it('persists atomically and keeps ids when reopened and grown', async () => {
    const file = path.join(tmp, 'registry.json');
    const first = await ItemRegistry.open(file);
    expect(first.size).toBe(0);
    first.assign(['x', 'y']);
    await first.save();
    const second = await ItemRegistry.open(file);
    expect(second.assign(['y', 'z', 'x'])).toEqual([2, 3, 1]);
    await second.save();
    const third = await ItemRegistry.open(file);
    expect(third.externalIds()).toEqual(['x', 'y', 'z']);
    expect(third.hash()).toBe(second.hash());
    expect((await fs.readdir(tmp)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('rejects truncated, edited and duplicated registry files with clear errors', async () => {
    const file = path.join(tmp, 'registry.json');
    const registry = await ItemRegistry.open(file);
    registry.assign(['a', 'b', 'c']);
    await registry.save();
    const text = await fs.readFile(file, 'utf8');

    await fs.writeFile(file, text.slice(0, text.length - 10));
    await expect(ItemRegistry.open(file)).rejects.toThrow(/not valid JSON \(truncated or corrupt\)/);

    await fs.writeFile(file, text.replace('"b"', '"B"'));
    await expect(ItemRegistry.open(file)).rejects.toThrow(/corrupt or edited/);

    const body = JSON.parse(text) as { ids: string[] };
    const dup = ['a', 'b', 'a'];
    await fs.writeFile(file, JSON.stringify({ ...body, ids: dup, count: 3, sha256: sha256(dup.join('\n')) }));
    await expect(ItemRegistry.open(file)).rejects.toThrow(ArtifactError);
    await expect(ItemRegistry.open(file)).rejects.toThrow(/lists 1 id\(s\) twice/);

    await fs.writeFile(file, '[1, 2]');
    await expect(ItemRegistry.open(file)).rejects.toThrow(/expected \{format: "streamrec.item_registry"/);
  });

  it('refuses to overwrite ids appended by another writer', async () => {
    const file = path.join(tmp, 'registry.json');
    const a = await ItemRegistry.open(file);
    const b = await ItemRegistry.open(file);
    a.assign(['one']);
    await a.save();
    b.assign(['two']);
    await expect(b.save()).rejects.toThrow(/changed by another writer/);
    expect((await ItemRegistry.open(file)).externalIds()).toEqual(['one']);
  });
});

describe('Catalog', () => {
  it('keeps the newest metadata per item; on equal ts the later event wins', async () => {
    const catalog = new Catalog();
    const result = await catalog.applyAll([
      item('p1', 100, { title: 'old title' }),
      item('p2', 50, { title: 'second' }),
      item('p1', 200, { title: 'new title' }),
      item('p1', 150, { title: 'stale title' }),
      item('p2', 50, { title: 'second, replayed later' }),
    ]);
    expect(result).toEqual({ applied: 4, stale: 1 });
    expect(catalog.metadata('p1')?.title).toBe('new title');
    expect(catalog.metadata('p2')?.title).toBe('second, replayed later');
  });

  it('gives cleaned texts per field ordered by dense id, empty for items without metadata', () => {
    const registry = ItemRegistry.inMemory(['seen-in-interactions-only']);
    const catalog = new Catalog(registry);
    catalog.apply(item('a', 1, { title: '<b>Glue</b> &amp; tape', categories: ['Lab', 'Adhesives'] }));
    catalog.apply(item('b', 1, { title: 'Pipette', brand: 'Acme' }));
    expect(catalog.size).toBe(3);
    expect(catalog.itemsWithMetadata).toBe(2);
    expect(catalog.fieldTexts('title')).toEqual(['', 'Glue & tape.', 'Pipette.']);
    expect(catalog.fieldTexts('categories')).toEqual(['', 'Lab Adhesives.', '']);
    expect(catalog.textFields()).toEqual(['title', 'brand', 'categories']);
  });

  it("has just ['meta'] for a source with one merged text", () => {
    const catalog = new Catalog();
    catalog.apply(item('a', 1, { meta: 'Everything about a.' }));
    catalog.apply(item('b', 1, { meta: '' }));
    expect(catalog.textFields()).toEqual(['meta']);
  });

  it('hashes the snapshot by content: timestamps do not matter, texts and ids do', () => {
    const build = (events: ItemEvent[]) => {
      const c = new Catalog();
      events.forEach((e) => c.apply(e));
      return c.snapshotHash();
    };
    const base = build([item('a', 1, { title: 'A' }), item('b', 2, { title: 'B' })]);
    expect(build([item('a', 10, { title: 'A' }), item('b', 20, { title: 'B' })])).toBe(base);
    expect(build([item('a', 1, { title: 'A!' }), item('b', 2, { title: 'B' })])).not.toBe(base);
    expect(build([item('b', 2, { title: 'B' }), item('a', 1, { title: 'A' })])).not.toBe(base);
    expect(base).toMatch(/^[0-9a-f]{64}$/);
  });

  it('rejects an event without a finite timestamp', () => {
    const catalog = new Catalog();
    expect(() => catalog.apply({ itemId: 'a', ts: Number.NaN } as ItemEvent)).toThrow(/epoch milliseconds, got number NaN/);
  });
});
