// Registers and manages the apps that sign in with us (OpenID Connect) or get tokens for themselves, from a shell: the
// same registry as /admin/oauth-clients, written straight to the database.
// Usage: npm run oauth:client -- create --name Grafana --redirect-uri https://grafana.example.com/login/generic_oauth
//        npm run oauth:client -- list | show <clientId> | rotate-secret <clientId> | delete <clientId>
import { parseArgs } from 'node:util';
import dotenv from 'dotenv';
import { z } from 'zod';
import { systemClock } from '../src/core/clock.js';
import { ConfigError, loadConfig } from '../src/core/config.js';
import { openDatabase } from '../src/core/db.js';
import { DataDirInUseError } from '../src/core/db/data-dir-lock.js';
import { AppError } from '../src/core/errors.js';
import { NewClientBody, OAuthClients } from '../src/features/oauth-provider/oauth-clients.js';

dotenv.config({ quiet: true });

const USAGE = `usage: npm run oauth:client -- <command>
  create --name NAME [--redirect-uri URI]... [--post-logout-redirect-uri URI]... [--grant-types a,b]
         [--scopes "openid profile email offline_access"] [--resource URL]... [--public] [--first-party]
         [--introspection] [--require-dpop] [--auth-method client_secret_basic|client_secret_post|none] [--backchannel-logout-uri URI]
  list
  show <clientId>
  rotate-secret <clientId>
  delete <clientId>`;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    name: { type: 'string' },
    'redirect-uri': { type: 'string', multiple: true },
    'post-logout-redirect-uri': { type: 'string', multiple: true },
    'grant-types': { type: 'string' },
    scopes: { type: 'string' },
    resource: { type: 'string', multiple: true },
    public: { type: 'boolean' },
    'first-party': { type: 'boolean' },
    introspection: { type: 'boolean' },
    'require-dpop': { type: 'boolean' },
    'auth-method': { type: 'string' },
    'backchannel-logout-uri': { type: 'string' },
  },
});
const [command, clientId] = positionals;

function newClient() {
  const list = (value: string | undefined, separator: RegExp) => value?.split(separator).filter(Boolean);
  return NewClientBody.parse({
    name: values.name,
    redirectUris: values['redirect-uri'],
    postLogoutRedirectUris: values['post-logout-redirect-uri'],
    grantTypes: list(values['grant-types'], /,/),
    scopes: list(values.scopes, /[\s,]+/),
    resources: values.resource,
    public: values.public,
    firstParty: values['first-party'],
    introspection: values.introspection,
    requireDpop: values['require-dpop'],
    tokenEndpointAuthMethod: values['auth-method'],
    backchannelLogoutUri: values['backchannel-logout-uri'],
  });
}

try {
  if (!command || !['create', 'list', 'show', 'rotate-secret', 'delete'].includes(command) || (command !== 'create' && command !== 'list' && !clientId)) {
    console.error(USAGE);
    process.exit(2);
  }
  const config = loadConfig(process.env);
  const db = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, migrate: config.migrateOnStart });
  // The shell checks a client against the registry's own rules; the running provider checks it again on every use.
  const clients = new OAuthClients({ prisma: db.prisma, clock: systemClock, check: () => Promise.resolve() });
  try {
    const answer =
      command === 'create'
        ? await clients.create(newClient())
        : command === 'list'
          ? { clients: await clients.list() }
          : command === 'show'
            ? await clients.get(clientId!)
            : command === 'rotate-secret'
              ? await clients.change(clientId!, { rotateSecret: true })
              : (await clients.remove(clientId!), { deleted: clientId });
    console.log(JSON.stringify(answer, null, 2));
    if ('clientSecret' in answer) console.error('\nThe clientSecret is shown this once: store it in the app now.');
  } finally {
    await db.close();
  }
} catch (err) {
  if (err instanceof z.ZodError) console.error(`${err.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('\n')}\n\n${USAGE}`);
  else if (err instanceof AppError) console.error(`${err.message}${err.details ? ` ${JSON.stringify(err.details)}` : ''}`);
  else if (err instanceof DataDirInUseError)
    console.error(`${err.message}\nThe embedded server holds the database: use POST /admin/oauth-clients while it runs.`);
  else console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
}
