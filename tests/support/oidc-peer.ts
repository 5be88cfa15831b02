// A real OpenID provider on loopback for tests (panva's oidc-provider), with switches to misbehave on purpose.
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import * as jose from 'jose';
import { readPersonChoice } from './provider-driver.js';

export interface OidcPeerUser {
  sub: string;
  email?: string;
  email_verified?: boolean;
  name?: string;
}

export interface OidcPeerClient {
  clientId: string;
  clientSecret: string;
  /** Compared exactly, as OpenID Connect requires. */
  redirectUris: string[];
  tokenEndpointAuthMethod?: 'client_secret_basic' | 'client_secret_post';
  /** Leave unset for any; ['form_post'] plays Sign in with Apple. */
  responseModes?: Array<'query' | 'form_post' | 'fragment'>;
}

/** Who signs the ID token the token endpoint hands out. */
export type IdTokenSigner = 'own-key' | 'foreign-key-same-kid' | 'unknown-kid' | 'none' | 'client-secret-hs256';
export type IdTokenClaims = jose.JWTPayload & Record<string, unknown>;
export type OidcEndpoint = 'discovery' | 'authorization' | 'token' | 'jwks' | 'userinfo';

/** A fault the peer plays: wait (Infinity: never answer) and then pass on or answer with an HTTP status. */
export interface PeerFault {
  delayMs?: number;
  status?: number;
  /** Only these; all when unset. */
  endpoints?: OidcEndpoint[];
}

export interface OidcPeerOptions {
  /** Put email and name into the ID token itself, as Google and Apple do (default); false leaves them to userinfo. */
  claimsInIdToken?: boolean;
}

const endpointPaths: Record<OidcEndpoint, string> = {
  discovery: '/.well-known/openid-configuration',
  authorization: '/auth',
  token: '/token',
  jwks: '/jwks',
  userinfo: '/me',
};

/** The few parts of oidc-provider (which ships no types) this peer uses. */
interface Interaction {
  prompt: { name: string; details: { missingOIDCScope?: string[]; missingOIDCClaims?: string[] } };
  params: { client_id: string; scope?: string };
  session?: { accountId: string };
  grantId?: string;
}
interface Grant {
  addOIDCScope(scope: string): void;
  addOIDCClaims(claims: string[]): void;
  save(): Promise<string>;
}
interface Provider {
  callback(): http.RequestListener;
  use(middleware: (ctx: KoaContext, next: () => Promise<void>) => Promise<void>): void;
  interactionDetails(req: http.IncomingMessage, res: http.ServerResponse): Promise<Interaction>;
  interactionFinished(req: http.IncomingMessage, res: http.ServerResponse, result: object, options: object): Promise<void>;
  Grant: { new (init: { accountId: string; clientId: string }): Grant; find(id: string): Promise<Grant | undefined> };
}
interface KoaContext {
  path: string;
  status: number;
  body: unknown;
}
type ProviderClass = new (issuer: string, configuration: object) => Provider;
type AdapterFactory = (model: string) => object;

/** A person's sign-in at this peer ends here; without a choice the peer shows a page nobody will click. */
async function finishInteraction(provider: Provider, users: Map<string, OidcPeerUser>, req: http.IncomingMessage, res: http.ServerResponse) {
  const interaction = await provider.interactionDetails(req, res);
  const choice = readPersonChoice(req.headers);
  if (!choice) {
    res.writeHead(200, { 'content-type': 'text/html' }).end('<form>Sign in to the test provider</form>');
    return;
  }
  if (choice === 'deny') {
    const denial = { error: 'access_denied', error_description: 'The person declined to sign in.' };
    await provider.interactionFinished(req, res, denial, { mergeWithLastSubmission: false });
    return;
  }
  // A login prompt asks who this is; a consent prompt belongs to whoever is already signed in.
  const accountId = interaction.prompt.name === 'login' || !interaction.session ? choice.signInAs : interaction.session.accountId;
  if (!users.has(accountId)) {
    res.writeHead(400, { 'content-type': 'text/plain' }).end(`no user ${accountId} at this provider`);
    return;
  }
  const clientId = interaction.params.client_id;
  const grant = (interaction.grantId && (await provider.Grant.find(interaction.grantId))) || new provider.Grant({ accountId, clientId });
  // Consent to everything asked for, in one round with the login, as a person clicking "Allow" would.
  grant.addOIDCScope(interaction.params.scope ?? 'openid');
  const { missingOIDCScope = [], missingOIDCClaims = [] } = interaction.prompt.details;
  if (missingOIDCScope.length > 0) grant.addOIDCScope(missingOIDCScope.join(' '));
  if (missingOIDCClaims.length > 0) grant.addOIDCClaims(missingOIDCClaims);
  const result = { login: { accountId }, consent: { grantId: await grant.save() } };
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
}

export class OidcPeer {
  readonly users = new Map<string, OidcPeerUser>();
  private readonly clients = new Map<string, object>();
  private readonly sockets = new Set<Socket>();
  private server?: http.Server;
  private provider?: Provider;
  private editIdToken?: (claims: IdTokenClaims) => IdTokenClaims;
  private signer: IdTokenSigner = 'own-key';
  private fault?: PeerFault;
  private foreignKey?: jose.CryptoKey;
  private constructor(
    readonly port: number,
    private readonly signingKey: { privateKey: jose.CryptoKey; kid: string },
  ) {}

  /** The issuer identifier, exactly as discovery and ID tokens state it (no trailing slash). */
  get issuer(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(options: OidcPeerOptions = {}): Promise<OidcPeer> {
    // Loaded through a plain string so TypeScript does not look for types the package does not ship.
    const providerModule = 'oidc-provider';
    const { default: Provider } = (await import(providerModule)) as { default: ProviderClass };
    const adapterModule = 'oidc-provider/lib/adapters/memory_adapter.js';
    const { createMemoryAdapter } = (await import(adapterModule)) as { createMemoryAdapter: () => AdapterFactory };

    const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
    const kid = randomUUID();
    const jwk = { ...(await jose.exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
    const server = http.createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const peer = new OidcPeer((server.address() as AddressInfo).port, { privateKey, kid });
    peer.server = server;
    server.on('connection', (socket) => {
      peer.sockets.add(socket);
      socket.on('close', () => peer.sockets.delete(socket));
    });

    const memory = createMemoryAdapter();
    const provider = new Provider(peer.issuer, {
      // Clients live in this peer's own store, so a test can register one after the port (and its callback) is known.
      adapter: (model: string) => (model === 'Client' ? { find: (id: string) => Promise.resolve(peer.clients.get(id)) } : memory(model)),
      findAccount: (_ctx: unknown, sub: string) => {
        const user = peer.users.get(sub);
        return user && { accountId: sub, claims: () => ({ ...user }) };
      },
      claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
      conformIdTokenClaims: options.claimsInIdToken === false,
      features: { devInteractions: { enabled: false } },
      pkce: { required: () => true },
      allowOmittingSingleRegisteredRedirectUri: false,
      jwks: { keys: [jwk] },
      cookies: { keys: [randomBytes(32).toString('base64url')] },
      // Seconds, given so the package does not print a notice for each default it falls back to.
      ttl: { AuthorizationCode: 60, Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 3600, IdToken: 3600 },
      renderError: (ctx: KoaContext, out: object) => {
        ctx.body = out;
      },
    });
    provider.use(async (ctx, next) => {
      await next();
      const body = ctx.body as { id_token?: string } | undefined;
      if (ctx.path === endpointPaths.token && ctx.status === 200 && body?.id_token && (peer.editIdToken || peer.signer !== 'own-key')) {
        ctx.body = { ...body, id_token: await peer.forge(body.id_token) };
      }
    });
    peer.provider = provider;
    const handle = provider.callback();
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      void peer.serve(req, res, handle).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' }).end(String(error));
      });
    });
    return peer;
  }

  private async serve(req: http.IncomingMessage, res: http.ServerResponse, handle: http.RequestListener): Promise<void> {
    const path = new URL(req.url ?? '/', this.issuer).pathname;
    const fault = this.fault;
    if (fault && (!fault.endpoints || fault.endpoints.some((endpoint) => endpointPaths[endpoint] === path))) {
      if (fault.delayMs === Infinity) return; // the socket stays open until close() destroys it
      if (fault.delayMs) await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
      if (fault.status) {
        res.writeHead(fault.status, { 'content-type': 'application/json' }).end('{"error":"server_error"}');
        return;
      }
    }
    if (path.startsWith('/interaction/') && req.method === 'GET') {
      await finishInteraction(this.provider!, this.users, req, res);
      return;
    }
    handle(req, res);
  }

  addClient(client: OidcPeerClient): void {
    this.clients.set(client.clientId, {
      client_id: client.clientId,
      client_secret: client.clientSecret,
      redirect_uris: client.redirectUris,
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: client.tokenEndpointAuthMethod ?? 'client_secret_basic',
      ...(client.responseModes && { response_modes: client.responseModes }),
    });
  }

  setUser(user: OidcPeerUser): void {
    this.users.set(user.sub, user);
  }

  /** Rewrites the claims of every ID token the token endpoint hands out, until reset(). */
  tamperIdToken(edit: (claims: IdTokenClaims) => IdTokenClaims): void {
    this.editIdToken = edit;
  }

  signIdTokenWith(signer: IdTokenSigner): void {
    this.signer = signer;
  }

  setFault(fault: PeerFault | undefined): void {
    this.fault = fault;
  }

  /** Back to honest: real ID tokens, no fault. */
  reset(): void {
    this.editIdToken = undefined;
    this.signer = 'own-key';
    this.fault = undefined;
  }

  private async forge(idToken: string): Promise<string> {
    const original = jose.decodeJwt<IdTokenClaims>(idToken);
    const claims = this.editIdToken ? this.editIdToken({ ...original }) : original;
    const sign = (alg: string, kid: string | undefined, key: jose.CryptoKey | Uint8Array) =>
      new jose.SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT', ...(kid && { kid }) }).sign(key);
    switch (this.signer) {
      case 'own-key':
        return sign('RS256', this.signingKey.kid, this.signingKey.privateKey);
      case 'foreign-key-same-kid':
        return sign('RS256', this.signingKey.kid, await this.foreignPrivateKey());
      case 'unknown-kid':
        return sign('RS256', randomUUID(), await this.foreignPrivateKey());
      case 'none':
        return new jose.UnsecuredJWT(claims).encode();
      case 'client-secret-hs256': {
        const audience = Array.isArray(original.aud) ? original.aud[0] : original.aud;
        const client = this.clients.get(String(audience)) as { client_secret: string } | undefined;
        return sign('HS256', undefined, new TextEncoder().encode(client?.client_secret ?? ''));
      }
    }
  }

  private async foreignPrivateKey(): Promise<jose.CryptoKey> {
    this.foreignKey ??= (await jose.generateKeyPair('RS256')).privateKey;
    return this.foreignKey;
  }

  /** Stops answering: connections are cut and the port refuses new ones (close() is still needed). */
  async goDown(): Promise<void> {
    const server = this.server;
    if (!server?.listening) return;
    const closed = once(server, 'close');
    server.close();
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  /** Listens again on the same port after goDown(). */
  async comeBack(): Promise<void> {
    const server = this.server!;
    server.listen(this.port, '127.0.0.1');
    await once(server, 'listening');
  }

  async close(): Promise<void> {
    await this.goDown();
  }
}

/** Starts a peer on 127.0.0.1, an ephemeral port, with its own issuer and signing key. */
export function startOidcPeer(options: OidcPeerOptions = {}): Promise<OidcPeer> {
  return OidcPeer.start(options);
}
