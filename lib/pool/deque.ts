/** A ring-buffer deque: O(1) push and pop at both ends, no shifting of arrays. */
export class Deque<T> {
  #items: Array<T | undefined> = new Array<T | undefined>(16);
  #head = 0;
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(item: T): void {
    if (this.#length === this.#items.length) this.#grow();
    this.#items[(this.#head + this.#length) % this.#items.length] = item;
    this.#length++;
  }

  /** Removes and returns the newest item. */
  pop(): T | undefined {
    if (this.#length === 0) return undefined;
    this.#length--;
    const index = (this.#head + this.#length) % this.#items.length;
    const item = this.#items[index];
    this.#items[index] = undefined;
    return item;
  }

  /** Removes and returns the oldest item. */
  shift(): T | undefined {
    if (this.#length === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#items.length;
    this.#length--;
    return item;
  }

  /** The oldest item, without removing it. */
  peekFirst(): T | undefined {
    return this.#length === 0 ? undefined : this.#items[this.#head];
  }

  /** Removes every item for which `drop` is true, keeping the order of the rest. O(n). */
  removeWhere(drop: (item: T) => boolean): T[] {
    const removed: T[] = [];
    const kept: T[] = [];
    while (this.#length > 0) {
      const item = this.shift() as T;
      (drop(item) ? removed : kept).push(item);
    }
    for (const item of kept) this.push(item);
    return removed;
  }

  *[Symbol.iterator](): Iterator<T> {
    for (let i = 0; i < this.#length; i++) yield this.#items[(this.#head + i) % this.#items.length] as T;
  }

  #grow(): void {
    const bigger = new Array<T | undefined>(this.#items.length * 2);
    for (let i = 0; i < this.#length; i++) bigger[i] = this.#items[(this.#head + i) % this.#items.length];
    this.#items = bigger;
    this.#head = 0;
  }
}
