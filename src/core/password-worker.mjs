// One thread of the password-hash pool: runs bcrypt (and the password-strength estimate) here, so the main thread
// never waits on it.
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

/** @type {Promise<import('@zxcvbn-ts/core').ZxcvbnFactory> | undefined} */
let estimator;

/** zxcvbn with the common and English dictionaries, loaded on the first strength task (it takes a while and memory). */
function strengthEstimator() {
  estimator ??= (async () => {
    const [{ ZxcvbnFactory }, common, english] = await Promise.all([
      import('@zxcvbn-ts/core'),
      import('@zxcvbn-ts/language-common'),
      import('@zxcvbn-ts/language-en'),
    ]);
    return new ZxcvbnFactory({
      translations: english.translations,
      graphs: common.adjacencyGraphs,
      dictionary: { ...common.dictionary, ...english.dictionary },
    });
  })();
  return estimator;
}

/**
 * How guessable a password is: zxcvbn's score (0 to 4), its warning, and whether the whole password is one entry of
 * its lists of common (leaked) passwords. It can take a few hundred milliseconds on a long random password, which is
 * why it runs here and not on the event loop.
 * @param {string} password
 * @param {string[]} userInputs
 */
async function strength(password, userInputs) {
  const result = (await strengthEstimator()).check(password, userInputs);
  const common = result.sequence.some(
    (match) => match.pattern === 'dictionary' && String(match.dictionaryName).startsWith('passwords') && match.token.length >= password.length - 2,
  );
  return { score: result.score, warning: result.feedback.warning ?? null, suggestions: result.feedback.suggestions, common };
}

/**
 * @param {{ op: 'hash', password: string, cost: number } | { op: 'compare', password: string, hash: string }
 *   | { op: 'strength', password: string, userInputs: string[] }} task
 */
function run(task) {
  if (task.op === 'strength') return strength(task.password, task.userInputs);
  return task.op === 'hash' ? bcrypt.hashSync(task.password, task.cost) : bcrypt.compareSync(task.password, task.hash);
}

parentPort?.on('message', async (/** @type {{ id: number, task: Parameters<typeof run>[0] }} */ message) => {
  try {
    parentPort?.postMessage({ id: message.id, result: await run(message.task) });
  } catch (err) {
    parentPort?.postMessage({ id: message.id, error: err instanceof Error ? err.message : String(err) });
  }
});
