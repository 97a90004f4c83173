import type { InteractionType, ItemEvent } from '../schemas/events';

/** One user's full interaction sequence, oldest first. */
export interface UserSequence {
  readonly userId: string;
  readonly itemIds: string[];
  /** Epoch ms, non-decreasing, same length as itemIds. */
  readonly timestamps: number[];
  /** Ratings where the dataset has them, same length as itemIds. */
  readonly values?: number[];
}

/** A leave-one-out row as shipped by a dataset: history (oldest first) and the next item. */
export interface SplitRow {
  readonly userId: string;
  readonly history: string[];
  readonly target: string;
}

export interface DatasetSplit {
  readonly train: SplitRow[];
  readonly valid: SplitRow[];
  readonly test: SplitRow[];
}

export interface LoadedDataset {
  readonly name: string;
  readonly dir: string;
  /** Catalog events, one per item. */
  readonly items: ItemEvent[];
  /** Per-user sequences ordered by time. */
  readonly sequences: UserSequence[];
  /** The interaction type events of this dataset get when replayed. */
  readonly eventType: InteractionType;
  /** The split the dataset ships, when it has one (Amazon Scientific). */
  readonly split?: DatasetSplit;
  /** How timestamps were obtained (real, or generated and by which rule). */
  readonly timestampRule: string;
  /**
   * The ClickHouse archive read as a dataset: per `topic/partition`, the first offset not in it
   * (the interactions are exactly those below). What a model trained on it has seen of the stream.
   */
  readonly streamOffsets?: Readonly<Record<string, number>>;
}
