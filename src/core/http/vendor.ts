// Browser modules the page loads straight from installed packages (the password-strength estimator, the WebAuthn
// helpers), with the
// import map that lets the browser resolve their bare imports and the CSP hash that lets that map run.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import express, { Router } from 'express';
import { CLIENT_PACKAGE_DIST } from '../paths.js';

const require = createRequire(import.meta.url);

/** URL prefix → the installed directory that holds the package's ES modules. */
const VENDORED: Record<string, string> = {
  '/vendor/zxcvbn-core': path.dirname(require.resolve('@zxcvbn-ts/core')),
  '/vendor/zxcvbn-common': path.dirname(require.resolve('@zxcvbn-ts/language-common')),
  '/vendor/zxcvbn-en': path.dirname(require.resolve('@zxcvbn-ts/language-en')),
  '/vendor/zxcvbn-compression': path.dirname(require.resolve('@zxcvbn-ts/dictionary-compression/decompress')),
  '/vendor/fastest-levenshtein': path.join(path.dirname(require.resolve('fastest-levenshtein')), 'esm'),
  // Its CommonJS entry sits in script/; the ES modules beside it in esm/.
  '/vendor/simplewebauthn': path.join(path.dirname(path.dirname(require.resolve('@simplewebauthn/browser'))), 'esm'),
  // This project's own client library, built beside the server: the page is its first user.
  '/vendor/authkit-client': CLIENT_PACKAGE_DIST,
};

/** Serves the vendored modules (only `.mjs`/`.js`; their versions change with the lock file, so a day of caching). */
export function vendorRouter(): Router {
  const router = Router();
  for (const [prefix, dir] of Object.entries(VENDORED)) {
    const serve = express.static(dir, { maxAge: '1d', index: false });
    router.use(prefix, (req, res, next) => (/\.m?js$/.test(req.path) ? serve(req, res, next) : next()));
  }
  return router;
}

/**
 * The `'sha256-…'` CSP source of each inline script in the page (its import map), so the policy allows exactly
 * those and no other inline script.
 */
export function inlineScriptHashes(htmlFile: string): string[] {
  const html = readFileSync(htmlFile, 'utf8');
  return [...html.matchAll(/<script type="importmap">([\s\S]*?)<\/script>/g)].map(
    ([, body]) =>
      `'sha256-${createHash('sha256')
        .update(body ?? '', 'utf8')
        .digest('base64')}'`,
  );
}
