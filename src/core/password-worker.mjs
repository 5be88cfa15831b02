// One thread of the password-hash pool: runs bcrypt, the key derivations of other systems' password hashes (Argon2,
// scrypt, PBKDF2) and the password-strength estimate here, so the main thread never waits on them.
// Plain JavaScript, so the same file runs under the compiled server, tsx and the test runner alike.
import { pbkdf2Sync, scryptSync } from 'node:crypto';
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

/** @type {Promise<typeof import('@node-rs/argon2')> | undefined} */
let argon2;

/** The library's Algorithm and Version are const enums: their numbers, as it declares them. */
/** @type {Record<'argon2d' | 'argon2i' | 'argon2id', import('@node-rs/argon2').Algorithm>} */
const ARGON2_VARIANTS = { argon2d: 0, argon2i: 1, argon2id: 2 };
/** @type {Record<16 | 19, import('@node-rs/argon2').Version>} */
const ARGON2_VERSIONS = { 16: 0, 19: 1 };

/**
 * The bytes a key derivation gives (the caller compares them in constant time). Argon2 is loaded on the first task
 * that needs it: most servers never see one.
 * @param {string} password
 * @param {import('./password-hash-pool.js').KeyDerivation} derivation
 */
async function derive(password, derivation) {
  if (derivation.kdf === 'pbkdf2') return pbkdf2Sync(password, derivation.salt, derivation.iterations, derivation.length, derivation.digest);
  if (derivation.kdf === 'scrypt') {
    const { cost: N, blockSize: r, parallelism: p, salt, length } = derivation;
    // scrypt needs 128·N·r bytes; the default ceiling (32 MiB) would refuse parameters the caller has already bounded.
    return scryptSync(password, salt, length, { N, r, p, maxmem: 128 * N * r * p + 64 * 1024 * 1024 });
  }
  argon2 ??= import('@node-rs/argon2');
  const { hashRawSync } = await argon2;
  return hashRawSync(password, {
    algorithm: ARGON2_VARIANTS[derivation.variant],
    version: ARGON2_VERSIONS[derivation.version],
    memoryCost: derivation.memoryKiB,
    timeCost: derivation.passes,
    parallelism: derivation.parallelism,
    salt: derivation.salt,
    outputLen: derivation.length,
  });
}

/**
 * @param {import('./password-hash-pool.js').HashTask} task
 */
function run(task) {
  if (task.op === 'strength') return strength(task.password, task.userInputs);
  if (task.op === 'derive') return derive(task.password, task.derivation);
  return task.op === 'hash' ? bcrypt.hashSync(task.password, task.cost) : bcrypt.compareSync(task.password, task.hash);
}

parentPort?.on('message', async (/** @type {{ id: number, task: Parameters<typeof run>[0] }} */ message) => {
  try {
    parentPort?.postMessage({ id: message.id, result: await run(message.task) });
  } catch (err) {
    parentPort?.postMessage({ id: message.id, error: err instanceof Error ? err.message : String(err) });
  }
});
