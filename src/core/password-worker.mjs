// One thread of the password-hash pool: runs bcrypt synchronously here, so the main thread never waits on it.
// Plain JavaScript, so the same file runs under the compiled server, tsx and the test runner alike.
import { setPriority } from 'node:os';
import process from 'node:process';
import { parentPort } from 'node:worker_threads';
import bcrypt from 'bcryptjs';

// On Linux this lowers only this thread's priority: when the cores are busy, the event loop that answers
// every other request goes first, and hashing takes the time that is left.
const nice = Number(process.argv[2] ?? 0);
if (nice > 0) {
  try {
    setPriority(nice);
  } catch {
    // Not permitted or not supported here: run at normal priority.
  }
}

/** @param {{ op: 'hash', password: string, cost: number } | { op: 'compare', password: string, hash: string }} task */
function run(task) {
  return task.op === 'hash' ? bcrypt.hashSync(task.password, task.cost) : bcrypt.compareSync(task.password, task.hash);
}

parentPort?.on('message', (/** @type {{ id: number, task: Parameters<typeof run>[0] }} */ message) => {
  try {
    parentPort?.postMessage({ id: message.id, result: run(message.task) });
  } catch (err) {
    parentPort?.postMessage({ id: message.id, error: err instanceof Error ? err.message : String(err) });
  }
});
