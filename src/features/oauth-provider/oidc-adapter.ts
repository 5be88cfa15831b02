// oidc-provider's storage adapter: clients from PostgreSQL, everything else (codes, tokens, grants, sessions,
// interactions, DPoP proof ids) in the OAuth state store, so any instance finishes a flow another began.
import type { Adapter, AdapterPayload } from 'oidc-provider';
import { errors } from 'oidc-provider';
import type { Clock } from '../../core/clock.js';
import type { OAuthStateStore } from './oauth-state-store.js';
import type { OAuthClients } from './oauth-clients.js';

/** What an entry without its own lifetime (none of the stateful models, in practice) is kept for. */
const FALLBACK_TTL_S = 14 * 86_400;

export interface AdapterDeps {
  state: OAuthStateStore;
  clients: OAuthClients;
  clock: Clock;
  /** A rotated refresh token presented again within this many seconds is a racing tab, not a thief: refused, grant kept. */
  refreshReuseIntervalS: number;
  /** The scopes the provider offers now (standard ones and those of OAUTH_RESOURCES). */
  offeredScopes: ReadonlySet<string>;
}

const entryKey = (model: string, id: string) => `${model}:${id}`;
/** The group of a person's grants to one app. */
export const grantsOf = (accountId: string, clientId: string) => `grants:${accountId}:${clientId}`;

/** One model's entries. */
class StateAdapter implements Adapter {
  constructor(
    private readonly model: string,
    private readonly deps: AdapterDeps,
  ) {}

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const deadline = this.deps.clock.now() + (expiresIn || FALLBACK_TTL_S) * 1000;
    const groups = payload.grantId ? [`grant:${payload.grantId}`] : [];
    // A person's grants to an app, so that taking consent back (DELETE /me/apps/{clientId}) can end them all.
    if (this.model === 'Grant' && payload.accountId && payload.clientId) groups.push(grantsOf(payload.accountId, payload.clientId));
    await this.deps.state.put(entryKey(this.model, id), JSON.stringify({ payload, deadline }), deadline, groups);
    if (payload.uid) await this.deps.state.put(entryKey(`${this.model}:uid`, payload.uid), id, deadline);
    if (payload.userCode) await this.deps.state.put(entryKey(`${this.model}:user-code`, payload.userCode), id, deadline);
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    const stored = await this.deps.state.get(entryKey(this.model, id));
    if (stored === undefined) return undefined;
    const { payload } = JSON.parse(stored) as { payload: AdapterPayload };
    const spentAt = await this.deps.state.spentAt(entryKey(this.model, id));
    if (spentAt === undefined || this.inGrace(spentAt)) return payload;
    return { ...payload, consumed: Math.floor(spentAt / 1000) };
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    const id = await this.deps.state.get(entryKey(`${this.model}:uid`, uid));
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    const id = await this.deps.state.get(entryKey(`${this.model}:user-code`, userCode));
    return id === undefined ? undefined : this.find(id);
  }

  /**
   * Spends a code or a refresh token atomically. oidc-provider reads `consumed` and then consumes, so two requests
   * racing with one code would both pass its check: the loser is refused here, and the grant the code came from is
   * revoked, as for any code used twice (RFC 6749 §4.1.2).
   */
  async consume(id: string): Promise<void> {
    const key = entryKey(this.model, id);
    const stored = await this.deps.state.get(key);
    if (stored === undefined) throw new errors.InvalidGrant('grant source not found');
    const { payload, deadline } = JSON.parse(stored) as { payload: AdapterPayload; deadline: number };
    const spent = await this.deps.state.spend(key, deadline);
    if (spent.first) return;
    // A rotated refresh token back within the grace interval is most likely another tab racing: refused, but the grant
    // lives on (minting it a second successor would fork the grant into two live chains). After it, a thief's replay.
    if (this.inGrace(spent.spentAtMs)) throw new errors.InvalidGrant('refresh token already used; use the one it was exchanged for');
    if (payload.grantId) await this.revokeByGrantId(payload.grantId);
    throw new errors.InvalidGrant(`${this.model === 'RefreshToken' ? 'refresh token' : 'authorization code'} already used`);
  }

  async destroy(id: string): Promise<void> {
    await this.deps.state.delete([entryKey(this.model, id)]);
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    const members = await this.deps.state.members(`grant:${grantId}`);
    await this.deps.state.delete([...members, entryKey('Grant', grantId)]);
  }

  private inGrace(spentAtMs: number): boolean {
    return this.model === 'RefreshToken' && this.deps.clock.now() - spentAtMs <= this.deps.refreshReuseIntervalS * 1000;
  }
}

/** Clients live in PostgreSQL (see oauth-clients.ts); the provider writes one only through dynamic registration. */
class ClientAdapter implements Adapter {
  constructor(
    private readonly clients: OAuthClients,
    private readonly offeredScopes: ReadonlySet<string>,
  ) {}

  async upsert(id: string, payload: AdapterPayload): Promise<void> {
    await this.clients.saveRegistered(id, payload);
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    // Client ids are ours (base64url); anything else is not looked up at all.
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) return undefined;
    const metadata = await this.clients.metadata(id);
    if (!metadata) return undefined;
    // A scope whose API left OAUTH_RESOURCES is no longer the client's to ask for; the client itself keeps working.
    // Nothing left would read as "any scope": the client is then left as it is, which the provider refuses.
    const scope = typeof metadata.scope === 'string' ? metadata.scope.split(' ').filter((each) => this.offeredScopes.has(each)) : [];
    return scope.length === 0 ? metadata : { ...metadata, scope: scope.join(' ') };
  }

  findByUid(): Promise<undefined> {
    return Promise.resolve(undefined);
  }

  findByUserCode(): Promise<undefined> {
    return Promise.resolve(undefined);
  }

  async consume(): Promise<void> {}

  async destroy(id: string): Promise<void> {
    await this.clients.remove(id).catch(() => undefined);
  }

  async revokeByGrantId(): Promise<void> {}
}

/** The factory oidc-provider calls once per model name. */
export function adapterFactory(deps: AdapterDeps): (model: string) => Adapter {
  return (model) => (model === 'Client' ? new ClientAdapter(deps.clients, deps.offeredScopes) : new StateAdapter(model, deps));
}
