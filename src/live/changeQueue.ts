/**
 * A subscription's pending events as an async iterator (what graphql-js `subscribe` consumes): pushed by
 * the live record, pulled by the GraphQL executor. Bounded: a subscriber that falls this far behind is
 * ended with an error rather than left to grow the server's memory; it can resume from its last cursor.
 */
export class ChangeQueue<T> implements AsyncIterableIterator<T> {
  private readonly items: T[] = [];
  private readonly waiting: { resolve(result: IteratorResult<T>): void; reject(error: Error): void }[] = [];
  private failure?: Error;
  private done = false;

  constructor(
    private readonly limit: number,
    private readonly onClose: () => void,
  ) {}

  push(item: T): void {
    if (this.done) return;
    const waiter = this.waiting.shift();
    if (waiter) return waiter.resolve({ value: item, done: false });
    if (this.items.length >= this.limit)
      return this.fail(new Error(`More than ${this.limit} changes are waiting for this subscriber: resubscribe with \`since\` set to the last cursor received`));
    this.items.push(item);
  }

  /** Ends the iteration with an error; what was queued is dropped (the error says why). */
  fail(error: Error): void {
    if (this.done) return;
    this.failure = error;
    this.items.length = 0;
    this.finish();
  }

  get closed(): boolean {
    return this.done;
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.onClose();
    const failure = this.failure;
    if (failure && this.waiting.length) this.failure = undefined;
    for (const waiter of this.waiting.splice(0)) {
      if (failure) waiter.reject(failure);
      else waiter.resolve({ value: undefined, done: true });
    }
  }

  async next(): Promise<IteratorResult<T>> {
    if (this.items.length) return { value: this.items.shift() as T, done: false };
    if (this.failure) {
      const failure = this.failure;
      this.failure = undefined;
      throw failure;
    }
    if (this.done) return { value: undefined, done: true };
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  async return(): Promise<IteratorResult<T>> {
    this.items.length = 0;
    this.finish();
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}
