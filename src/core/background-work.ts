// Work a caller starts and does not wait for (an audit write, a notice on its way), tracked so that a stop can wait
// for it before it closes what the work needs.
export class BackgroundWork {
  private readonly pending = new Set<Promise<void>>();

  /** Keeps `work` until it ends; it must not reject (catch and log inside it). */
  track(work: Promise<void>): void {
    this.pending.add(work);
    void work.finally(() => this.pending.delete(work));
  }

  /** Resolves once all work tracked so far, and any it started meanwhile, has ended. */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }
}
