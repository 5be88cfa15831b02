// A GitHub-shaped OAuth 2.0 server on loopback for tests, written from GitHub's published documentation.
//
// What each endpoint follows (GitHub Docs, page titles):
// - GET /login/oauth/authorize, POST /login/oauth/access_token: "Authorizing OAuth apps", web application flow, with
//   the PKCE parameters (code_challenge, code_challenge_method=S256 only, code_verifier) GitHub added in 2025. Codes
//   last 10 minutes; the access token answer is form-encoded unless Accept asks for JSON.
// - Errors at the authorization step (redirect_uri_mismatch, access_denied: a redirect to the registered callback
//   URL): "Troubleshooting authorization request errors".
// - Errors at the token step (incorrect_client_credentials, redirect_uri_mismatch, bad_verification_code, each with
//   HTTP 200): "Troubleshooting OAuth app access token request errors".
// - GET /user: "REST API endpoints for users", Get the authenticated user. GET /user/emails: "REST API endpoints for
//   emails", List email addresses for the authenticated user (needs the user or user:email scope; GitHub answers 404
//   without it). A request without a User-Agent is refused: "Getting started with the REST API".
// Choices where GitHub documents less than a test needs, made strict on purpose:
// - redirect_uri must equal the registered callback URL exactly; GitHub also accepts subdirectories, and any port on a
//   loopback callback.
// - A PKCE mismatch answers bad_verification_code.
// - A code is spent by its first presentation, even a failed one; presented again, it revokes the token issued for it
//   (RFC 6749, section 4.1.2).
// - One server plays both github.com and api.github.com.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { type Clock, systemClock } from '../../src/core/clock.js';
import type { PeerFault } from './oidc-peer.js';
import { readPersonChoice } from './provider-driver.js';

export interface GithubEmail {
  email: string;
  primary: boolean;
  verified: boolean;
  visibility: 'public' | 'private' | null;
}

export interface GithubUser {
  id: number;
  login: string;
  name: string | null;
  emails: GithubEmail[];
}

export interface GithubApp {
  clientId: string;
  clientSecret: string;
  callbackUrl: string;
}

export type GithubEndpoint = 'authorize' | 'access_token' | 'user' | 'emails';
export type GithubFault = Omit<PeerFault, 'endpoints'> & { endpoints?: GithubEndpoint[] };

interface IssuedCode {
  app: GithubApp;
  user: GithubUser;
  redirectUri: string;
  scope: string;
  codeChallenge?: string;
  expiresAt: number;
  presented?: boolean;
  token?: string;
}

const endpointPaths: Record<GithubEndpoint, string> = {
  authorize: '/login/oauth/authorize',
  access_token: '/login/oauth/access_token',
  user: '/user',
  emails: '/user/emails',
};
const codeLifetimeMs = 10 * 60 * 1000;
const docs = '/apps/oauth-apps/maintaining-oauth-apps';
const tokenErrors = {
  incorrect_client_credentials: 'The client_id and/or client_secret passed are incorrect.',
  redirect_uri_mismatch: 'The redirect_uri MUST match the registered callback URL for this application.',
  bad_verification_code: 'The code passed is incorrect or expired.',
};

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('base64url');
}

async function readBody(req: http.IncomingMessage): Promise<Record<string, string>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (req.headers['content-type']?.startsWith('application/json')) return JSON.parse(text || '{}') as Record<string, string>;
  return Object.fromEntries(new URLSearchParams(text));
}

export class GithubPeer {
  readonly apps = new Map<string, GithubApp>();
  readonly users = new Map<string, GithubUser>();
  private readonly codes = new Map<string, IssuedCode>();
  private readonly tokens = new Map<string, { user: GithubUser; scope: string }>();
  private readonly sockets = new Set<Socket>();
  private fault?: GithubFault;
  private constructor(
    private readonly server: http.Server,
    readonly port: number,
    private readonly clock: Clock,
  ) {}

  /** Plays both https://github.com and https://api.github.com. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(options: { clock?: Clock } = {}): Promise<GithubPeer> {
    const server = http.createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const peer = new GithubPeer(server, (server.address() as AddressInfo).port, options.clock ?? systemClock);
    server.on('connection', (socket) => {
      peer.sockets.add(socket);
      socket.on('close', () => peer.sockets.delete(socket));
    });
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      void peer.serve(req, res).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' }).end(String(error));
      });
    });
    return peer;
  }

  addApp(app: GithubApp): void {
    this.apps.set(app.clientId, app);
  }

  setUser(user: GithubUser): void {
    this.users.set(user.login, user);
  }

  setFault(fault: GithubFault | undefined): void {
    this.fault = fault;
  }

  private async serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const fault = this.fault;
    if (fault && (!fault.endpoints || fault.endpoints.some((endpoint) => endpointPaths[endpoint] === url.pathname))) {
      if (fault.delayMs === Infinity) return; // the socket stays open until close() destroys it
      if (fault.delayMs) await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
      if (fault.status) return void res.writeHead(fault.status, { 'content-type': 'text/html' }).end('<h1>Unicorn!</h1>');
    }
    const route = `${req.method} ${url.pathname}`;
    if (route === `GET ${endpointPaths.authorize}`) return this.authorize(req, url, res);
    if (route === `POST ${endpointPaths.access_token}`) return this.exchange(req, res);
    if (route === `GET ${endpointPaths.user}` || route === `GET ${endpointPaths.emails}`) return this.api(req, url.pathname, res);
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'Not Found', status: '404' }));
  }

  private authorize(req: http.IncomingMessage, url: URL, res: http.ServerResponse): void {
    const query = url.searchParams;
    const app = this.apps.get(query.get('client_id') ?? '');
    if (!app) return void res.writeHead(404, { 'content-type': 'text/html' }).end('<h1>404: this is not the web page you are looking for</h1>');
    const state = query.get('state');
    const back = (redirectUri: string, params: Record<string, string>) => {
      const target = new URL(redirectUri);
      for (const [key, value] of Object.entries({ ...params, ...(state !== null && { state }) })) target.searchParams.set(key, value);
      res.writeHead(302, { location: target.href }).end();
    };
    const refuse = (error: string, description: string) =>
      back(app.callbackUrl, {
        error,
        error_description: description,
        error_uri: `${docs}/troubleshooting-authorization-request-errors/#${error.replace(/_/g, '-')}`,
      });
    const redirectUri = query.get('redirect_uri') ?? app.callbackUrl;
    if (redirectUri !== app.callbackUrl) return refuse('redirect_uri_mismatch', tokenErrors.redirect_uri_mismatch);
    const challenge = query.get('code_challenge') ?? undefined;
    const method = query.get('code_challenge_method');
    if ((method !== null && method !== 'S256') || (method !== null && !challenge) || (challenge !== undefined && !/^[\w-]{43}$/.test(challenge))) {
      return void res.writeHead(400, { 'content-type': 'text/html' }).end('<p>Invalid code_challenge or code_challenge_method.</p>');
    }
    const choice = readPersonChoice(req.headers);
    if (!choice) return void res.writeHead(200, { 'content-type': 'text/html' }).end('<form>Sign in to GitHub</form>');
    if (choice === 'deny') return refuse('access_denied', 'The user has denied your application access.');
    const user = this.users.get(choice.signInAs);
    if (!user) return void res.writeHead(400, { 'content-type': 'text/plain' }).end(`no user ${choice.signInAs} at this GitHub`);
    const code = randomBytes(10).toString('hex');
    const scope = (query.get('scope') ?? '')
      .split(/[\s,]+/)
      .filter(Boolean)
      .join(',');
    this.codes.set(code, { app, user, redirectUri, scope, codeChallenge: challenge, expiresAt: this.clock.now() + codeLifetimeMs });
    back(redirectUri, { code });
  }

  private async exchange(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readBody(req);
    const answer = (fields: Record<string, string>) => {
      if (req.headers.accept?.includes('application/json')) {
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(fields));
      } else {
        res.writeHead(200, { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }).end(new URLSearchParams(fields).toString());
      }
    };
    const fail = (error: keyof typeof tokenErrors) =>
      answer({
        error,
        error_description: tokenErrors[error],
        error_uri: `${docs}/troubleshooting-oauth-app-access-token-request-errors/#${error.replace(/_/g, '-')}`,
      });
    // Credentials in the body, as GitHub documents; HTTP Basic as well, as GitHub also accepts it.
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const [basicId, basicSecret] = basic ? Buffer.from(basic, 'base64').toString('utf8').split(':').map(decodeURIComponent) : [];
    const app = this.apps.get(body.client_id ?? basicId ?? '');
    if (!app || (body.client_secret ?? basicSecret) !== app.clientSecret) return fail('incorrect_client_credentials');
    const issued = this.codes.get(body.code ?? '');
    if (!issued || issued.app !== app || issued.expiresAt <= this.clock.now()) return fail('bad_verification_code');
    if (issued.presented) {
      if (issued.token) this.tokens.delete(issued.token);
      return fail('bad_verification_code');
    }
    // Single use: whatever happens next, this code is spent.
    issued.presented = true;
    if (body.redirect_uri !== undefined && body.redirect_uri !== issued.redirectUri) return fail('redirect_uri_mismatch');
    const verifier = body.code_verifier;
    if (issued.codeChallenge !== undefined ? !verifier || sha256(verifier) !== issued.codeChallenge : verifier !== undefined) {
      return fail('bad_verification_code');
    }
    issued.token = `gho_${randomBytes(18).toString('base64url')}`;
    this.tokens.set(issued.token, { user: issued.user, scope: issued.scope });
    answer({ access_token: issued.token, scope: issued.scope, token_type: 'bearer' });
  }

  private api(req: http.IncomingMessage, path: string, res: http.ServerResponse): void {
    const json = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers }).end(JSON.stringify(body));
    };
    if (!req.headers['user-agent']) {
      return json(403, { message: 'Request forbidden by administrative rules. Please make sure your request has a User-Agent header.' });
    }
    const credentials = /^(?:Bearer|token) (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (!credentials) return json(401, { message: 'Requires authentication', status: '401' });
    const grant = this.tokens.get(credentials);
    if (!grant) return json(401, { message: 'Bad credentials', status: '401' });
    const { user, scope } = grant;
    const scopes = { 'x-oauth-scopes': scope.split(',').join(', ') };
    if (path === endpointPaths.emails) {
      const granted = scope.split(',');
      if (!granted.includes('user') && !granted.includes('user:email')) {
        return json(404, { message: 'Not Found', status: '404' }, { ...scopes, 'x-accepted-oauth-scopes': 'user, user:email' });
      }
      return json(200, user.emails, scopes);
    }
    const publicEmail = user.emails.find((email) => email.primary && email.visibility === 'public')?.email ?? null;
    const profile = `${this.url}/${user.login}`;
    return json(200, { login: user.login, id: user.id, type: 'User', site_admin: false, name: user.name, email: publicEmail, html_url: profile }, scopes);
  }

  /** Stops answering: connections are cut and the port refuses new ones. */
  async close(): Promise<void> {
    if (!this.server.listening) return;
    const closed = once(this.server, 'close');
    this.server.close();
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}

/** Starts a GitHub stand-in on 127.0.0.1, an ephemeral port; code lifetimes follow the given clock. */
export function startGithubPeer(options: { clock?: Clock } = {}): Promise<GithubPeer> {
  return GithubPeer.start(options);
}
