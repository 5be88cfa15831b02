// The in-process stores' one building block: a map whose entries expire by the injected clock.
import type { Clock } from './clock.js';

const SWEEP_EVERY_WRITES = 1_000;

/** Expired entries read as absent at once, and are swept out every thousand writes so the map cannot grow unbounded. */
export class ExpiringMap<V> {
  private readonly entries = new Map<string, { value: V; expiresAt: number }>();
  private writesSinceSweep = 0;

  constructor(private readonly clock: Clock) {}

  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.clock.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  /** The entry's deadline, or undefined when it is absent or expired. */
  expiresAt(key: string): number | undefined {
    return this.get(key) === undefined ? undefined : this.entries.get(key)?.expiresAt;
  }

  /** Milliseconds until the entry expires; 0 when it is absent or expired. */
  remainingMs(key: string): number {
    const entry = this.entries.get(key);
    return entry ? Math.max(0, entry.expiresAt - this.clock.now()) : 0;
  }

  set(key: string, value: V, ttlMs: number): void {
    this.setUntil(key, value, this.clock.now() + ttlMs);
  }

  /** Stores `value` valid until the deadline `expiresAt` (the injected clock's milliseconds). */
  setUntil(key: string, value: V, expiresAt: number): void {
    const now = this.clock.now();
    this.entries.set(key, { value, expiresAt });
    if (++this.writesSinceSweep >= SWEEP_EVERY_WRITES) {
      this.writesSinceSweep = 0;
      for (const [entryKey, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(entryKey);
    }
  }

  delete(key: string): void {
    this.entries.delete(key);
  }
}
