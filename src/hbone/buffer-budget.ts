/**
 * A node-wide budget of bytes buffered in user space by every relay: bytes
 * read from one side and not yet taken by the other side's socket, beyond
 * each socket's own 16 KiB (which every relay keeps, so receivers that stall
 * cannot stop the others). When it is spent, every relay holding charged
 * bytes stops reading (its sources pause), so further bytes wait in the
 * kernel's socket buffers and TCP's window pushes back on the senders:
 * backpressure through the kernel instead of memory growth. A relay resumes
 * when its receiver drained or the budget has room again.
 *
 * Invariant: `used` is the sum of the charges of live relays; each relay
 * releases all it charged when it drains or closes.
 */
export class BufferBudget {
  readonly limitBytes: number;
  #used = 0;
  #exhausted = 0;
  readonly #waiters = new Set<() => void>();
  readonly #onExhausted: (() => void) | undefined;

  constructor(limitBytes: number, onExhausted?: () => void) {
    this.limitBytes = limitBytes;
    this.#onExhausted = onExhausted;
  }

  get used(): number {
    return this.#used;
  }

  /** How many times the budget ran out since start (a counter). */
  get exhaustions(): number {
    return this.#exhausted;
  }

  get spent(): boolean {
    return this.#used >= this.limitBytes;
  }

  charge(bytes: number): void {
    if (bytes <= 0) return;
    const was = this.spent;
    this.#used += bytes;
    if (!was && this.spent) {
      this.#exhausted++;
      this.#onExhausted?.();
    }
  }

  release(bytes: number): void {
    if (bytes <= 0) return;
    this.#used = Math.max(0, this.#used - bytes);
    if (this.spent || this.#waiters.size === 0) return;
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiters) w();
  }

  /** Calls `wake` once the budget has room; returns a cancel function. */
  wait(wake: () => void): () => void {
    this.#waiters.add(wake);
    return () => this.#waiters.delete(wake);
  }
}
