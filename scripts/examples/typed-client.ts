// A typed client for this API, generated from its OpenAPI document by @hey-api/openapi-ts: one function per
// operationId, with bodies and answers checked by the compiler. `npm run client:check` regenerates it from the
// current document and compiles this file, so the example in docs/client-library.md cannot rot.
// Against a running server: npx tsx scripts/examples/typed-client.ts http://localhost:3000 ada 'correct horse battery'
import { client } from './generated/client/client.gen.js';
import { getProtected, postLogin } from './generated/client/sdk.gen.js';

const [baseUrl = 'http://localhost:3000', username = 'ada', password = 'correct horse battery'] = process.argv.slice(2);
client.setConfig({ baseUrl });

const login = await postLogin({ body: { username, password } });
if (!login.data) throw new Error(`login failed: ${login.error?.error.message ?? 'no answer'}`);
if ('mfa_required' in login.data) throw new Error('two-factor is on: complete the login with postLoginMfa');

const hello = await getProtected({ headers: { Authorization: `Bearer ${login.data.access_token}` } });
console.log(hello.data?.message, hello.data?.user.roles);
