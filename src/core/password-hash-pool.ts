// A bounded pool of worker threads that runs every bcrypt hash and compare, every other key derivation a password
// check needs (Argon2, scrypt, PBKDF2), and the password-strength estimate, off the event loop.
import { Worker } from 'node:worker_threads';
import { AppError } from './errors.js';

export interface PasswordHashPoolOptions {
  /** Worker threads; each runs one hash at a time. */
  threads: number;
  /** Tasks that may wait for a free thread; past it, new tasks are refused at once with 503. */
  queueMax: number;
  /**
   * How much lower than the event loop the hashing threads run (0 to 19, Linux nice). While the cores are
   * saturated, requests that need no hash keep their latency and hashing takes what is left.
   */
  nice?: number;
  /** A thread with no work for this long is stopped (and started again on next need), so an idle server holds none. */
  idleTimeoutMs?: number;
}

/**
 * A key derivation from a password, as the password-hash formats of other systems need (see kernel/passwords): the
 * derived bytes come back, and the caller compares them.
 */
export type KeyDerivation =
  | {
      kdf: 'argon2';
      variant: 'argon2d' | 'argon2i' | 'argon2id';
      /** 0x10 (16) or 0x13 (19). */
      version: 16 | 19;
      memoryKiB: number;
      passes: number;
      parallelism: number;
      salt: Uint8Array;
      length: number;
    }
  | { kdf: 'scrypt'; cost: number; blockSize: number; parallelism: number; salt: Uint8Array; length: number }
  | { kdf: 'pbkdf2'; digest: 'sha1' | 'sha256' | 'sha512'; iterations: number; salt: Uint8Array; length: number };

export type HashTask =
  | { op: 'hash'; password: string; cost: number }
  | { op: 'compare'; password: string; hash: string }
  | { op: 'derive'; password: string; derivation: KeyDerivation }
  | { op: 'strength'; password: string; userInputs: string[] };

/** zxcvbn's estimate of a password: score 0 (trivial) to 4, and whether it is a known common password. */
export interface PasswordStrength {
  score: 0 | 1 | 2 | 3 | 4;
  warning: string | null;
  suggestions: string[];
  common: boolean;
}

type TaskResult = string | boolean | Uint8Array | PasswordStrength;

export interface PasswordHashPoolStats {
  /** The most threads the pool runs. */
  threads: number;
  /** Threads running now (idle ones stop after `idleTimeoutMs`). */
  started: number;
  busy: number;
  queued: number;
  queueMax: number;
  /** Tasks finished since start. */
  completed: number;
  /** Tasks refused because the queue was full. */
  rejected: number;
}

interface Pending {
  id: number;
  task: HashTask;
  /** performance.now() when it was handed to the pool. */
  submittedAt: number;
  resolve(result: TaskResult): void;
  reject(err: Error): void;
}

interface Slot {
  worker: Worker;
  current?: Pending & { startedAt: number };
  idleTimer?: NodeJS.Timeout;
}

type Reply = { id: number; result: TaskResult } | { id: number; error: string };

const WORKER_URL = new URL('./password-worker.mjs', import.meta.url);
/** Starting guess of a task's duration (a cost-12 compare), refined as tasks finish. */
const INITIAL_TASK_MS = 250;
const DEFAULT_IDLE_TIMEOUT_MS = 30_000;

export class PasswordHashPool {
  /** Told how long each task waited for a thread, in seconds (the metrics' wait-time histogram). */
  onWait?: (seconds: number) => void;
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private completed = 0;
  private rejected = 0;
  private averageTaskMs = INITIAL_TASK_MS;
  private closing: Promise<void> | undefined;
  private readonly onIdle: Array<() => void> = [];

  constructor(private readonly options: PasswordHashPoolOptions) {
    if (options.threads < 1) throw new Error('a password-hash pool needs at least one thread');
  }

  hash(password: string, cost: number): Promise<string> {
    return this.run({ op: 'hash', password, cost }) as Promise<string>;
  }

  compare(password: string, hash: string): Promise<boolean> {
    return this.run({ op: 'compare', password, hash }) as Promise<boolean>;
  }

  /** The bytes a key derivation gives for `password` (its parameters are the caller's to bound). */
  async derive(password: string, derivation: KeyDerivation): Promise<Buffer> {
    const bytes = (await this.run({ op: 'derive', password, derivation })) as Uint8Array;
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** zxcvbn's estimate, with `userInputs` (a username, an email) counted as easy to guess. */
  strength(password: string, userInputs: string[]): Promise<PasswordStrength> {
    return this.run({ op: 'strength', password, userInputs }) as Promise<PasswordStrength>;
  }

  stats(): PasswordHashPoolStats {
    return {
      threads: this.options.threads,
      started: this.slots.length,
      busy: this.slots.filter((slot) => slot.current).length,
      queued: this.queue.length,
      queueMax: this.options.queueMax,
      completed: this.completed,
      rejected: this.rejected,
    };
  }

  /** Lets the tasks already accepted finish, refuses new ones, then stops every thread. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (!this.idle()) await new Promise<void>((resolve) => this.onIdle.push(resolve));
      await Promise.all(this.slots.splice(0).map((slot) => this.retire(slot)));
    })();
    return this.closing;
  }

  private run(task: HashTask): Promise<TaskResult> {
    if (this.closing) return Promise.reject(new AppError('shutting_down', { headers: { 'Retry-After': '1' } }));
    const idle = this.slots.find((slot) => !slot.current) ?? this.spawn();
    if (!idle && this.queue.length >= this.options.queueMax) {
      this.rejected++;
      return Promise.reject(this.busyError());
    }
    return new Promise((resolve, reject) => {
      const pending: Pending = { id: this.nextId++, task, submittedAt: performance.now(), resolve, reject };
      if (idle) this.start(idle, pending);
      else this.queue.push(pending);
    });
  }

  private busyError(): AppError {
    const waitMs = ((this.queue.length + this.options.threads) * this.averageTaskMs) / this.options.threads;
    const seconds = Math.max(1, Math.ceil(waitMs / 1000));
    return new AppError('password_checks_busy', `Too many passwords are being checked right now; try again in ${seconds} seconds.`, {
      headers: { 'Retry-After': String(seconds) },
    });
  }

  /** A new thread while the pool is below its size; threads start on first need, so an idle server holds none. */
  private spawn(): Slot | undefined {
    if (this.slots.length >= this.options.threads) return undefined;
    const worker = new Worker(WORKER_URL, { argv: [String(this.options.nice ?? 0)] });
    const slot: Slot = { worker };
    worker.on('message', (reply: Reply) => this.finish(slot, reply));
    worker.on('error', (err) => this.fail(slot, err));
    worker.on('exit', (code) => this.fail(slot, new Error(`password-hash worker exited with code ${code}`)));
    worker.unref();
    this.slots.push(slot);
    return slot;
  }

  private start(slot: Slot, pending: Pending): void {
    clearTimeout(slot.idleTimer);
    const startedAt = performance.now();
    this.onWait?.((startedAt - pending.submittedAt) / 1000);
    slot.current = { ...pending, startedAt };
    // Referenced only while it works: an idle pool never keeps the process alive, a busy one always does.
    slot.worker.ref();
    slot.worker.postMessage({ id: pending.id, task: pending.task });
  }

  private finish(slot: Slot, reply: Reply): void {
    const current = slot.current;
    if (!current || current.id !== reply.id) return;
    slot.current = undefined;
    slot.worker.unref();
    this.completed++;
    this.averageTaskMs = 0.8 * this.averageTaskMs + 0.2 * (performance.now() - current.startedAt);
    if ('error' in reply) current.reject(new Error(`password hashing failed: ${reply.error}`));
    else current.resolve(reply.result);
    const next = this.queue.shift();
    if (next) this.start(slot, next);
    else this.retireWhenIdle(slot);
    this.notifyIfIdle();
  }

  private retireWhenIdle(slot: Slot): void {
    slot.idleTimer = setTimeout(() => {
      const index = this.slots.indexOf(slot);
      if (index === -1 || slot.current) return;
      this.slots.splice(index, 1);
      void this.retire(slot);
    }, this.options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS);
    slot.idleTimer.unref();
  }

  /** Stops a thread that has already left `slots`, so its exit is not taken for a crash. */
  private async retire(slot: Slot): Promise<void> {
    clearTimeout(slot.idleTimer);
    await slot.worker.terminate();
  }

  private idle(): boolean {
    return this.queue.length === 0 && this.slots.every((slot) => !slot.current);
  }

  private notifyIfIdle(): void {
    if (this.idle()) for (const resolve of this.onIdle.splice(0)) resolve();
  }

  /** A thread that died takes its task with it; the pool replaces the thread on next need. */
  private fail(slot: Slot, err: Error): void {
    const index = this.slots.indexOf(slot);
    if (index === -1) return;
    this.slots.splice(index, 1);
    slot.current?.reject(err);
    slot.current = undefined;
    const next = this.queue.shift();
    if (next) {
      const replacement = this.closing ? undefined : this.spawn();
      if (replacement) this.start(replacement, next);
      else next.reject(err);
    }
    this.notifyIfIdle();
  }
}
