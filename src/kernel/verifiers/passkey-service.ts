// Passkeys (WebAuthn credentials): registering one, and checking one for sign-in, a second factor or a step-up.
import type { ClientContext } from '../identity/client-context.js';
import type { SecurityEvents } from '../events/security-events.js';
import {
  type AuthenticationResponseJSON,
  type AuthenticatorTransport,
  generateAuthenticationOptions,
  generateRegistrationOptions,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from '@simplewebauthn/server';
import { decodeClientDataJSON } from '@simplewebauthn/server/helpers';
import type { Clock } from '../../core/clock.js';
import type { WebAuthnSettings } from '../../core/config.js';
import { isUniqueViolation, type Prisma } from '../../core/db.js';
import { AppError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { Ceremony, ChallengeStore } from '../challenges/webauthn-challenges.js';

/** More than anyone needs, few enough to keep each ceremony's credential lists short. */
export const MAX_PASSKEYS_PER_USER = 20;
const CEREMONY_TIMEOUT_MS = 120_000;

export interface PasskeyView {
  id: string;
  name: string;
  /** `multiDevice` when it can be synced (a passkey in a password manager or platform keychain), else `singleDevice`. */
  deviceType: 'singleDevice' | 'multiDevice';
  backedUp: boolean;
  transports: string[];
  createdAt: string;
  lastUsedAt: string | null;
}

/** Why a response was refused, in the error's details. */
export type RejectionReason =
  'challenge' | 'origin' | 'rp_id' | 'malformed' | 'signature' | 'unknown_credential' | 'wrong_user' | 'user_verification' | 'counter';

const REASON_MESSAGES: Record<RejectionReason, string> = {
  challenge: 'The challenge is unknown, expired, already used, or was issued for another ceremony; start again.',
  origin: 'The response comes from a page this service does not accept.',
  rp_id: 'The passkey belongs to another site.',
  malformed: 'The response could not be read.',
  signature: 'The signature does not verify.',
  unknown_credential: 'This passkey is not registered here.',
  wrong_user: 'This passkey belongs to another account.',
  user_verification: 'The authenticator did not verify the user (PIN or biometrics).',
  counter: "The authenticator's signature counter went backwards: it may have been cloned.",
};

/** A registration the service refused: 400, nothing stored. */
function rejectedRegistration(reason: RejectionReason): AppError {
  return new AppError('passkey_rejected', `The new passkey was not accepted. ${REASON_MESSAGES[reason]}`, { details: { reason } });
}

/** An assertion the service refused: 401, as for a wrong password. */
function rejectedAssertion(reason: RejectionReason): AppError {
  return new AppError('invalid_passkey', `The passkey was not accepted. ${REASON_MESSAGES[reason]}`, { details: { reason } });
}

/** Sorts the library's refusals (plain Errors) into reasons; anything unrecognised is a response we could not read. */
function reasonOf(err: unknown): RejectionReason {
  const message = err instanceof Error ? err.message : '';
  if (/RP ID/i.test(message)) return 'rp_id';
  if (/user verification|user not present/i.test(message)) return 'user_verification';
  return 'malformed';
}

/** The WebAuthn user handle: the account's id as 16 bytes (random, and no personal data, as the spec asks). */
export function userHandleOf(userId: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(Buffer.from(userId.replaceAll('-', ''), 'hex'));
}

/**
 * What RFC 8176 says a passkey proved: possession of a key kept in hardware (`hwk`, a device-bound credential) or
 * one that syncs (`swk`), the user's presence, and with user verification (PIN or biometrics) a second factor.
 */
export function passkeyAmr(passkey: { backupEligible: boolean }, userVerified: boolean): string[] {
  return [passkey.backupEligible ? 'swk' : 'hwk', 'user', ...(userVerified ? ['mfa'] : [])];
}

type PasskeyRow = Awaited<ReturnType<Prisma['passkey']['findUniqueOrThrow']>>;

function toView(row: PasskeyRow): PasskeyView {
  return {
    id: row.id,
    name: row.name,
    deviceType: row.backupEligible ? 'multiDevice' : 'singleDevice',
    backedUp: row.backedUp,
    transports: row.transports,
    createdAt: row.createdAt.toISOString(),
    lastUsedAt: row.lastUsedAt?.toISOString() ?? null,
  };
}

export interface VerifiedPasskey {
  userId: string;
  amr: string[];
}

export class PasskeyService {
  private readonly prisma: Prisma;
  private readonly challenges: ChallengeStore;
  private readonly settings: WebAuthnSettings;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly events: SecurityEvents;

  constructor(deps: { prisma: Prisma; challenges: ChallengeStore; settings: WebAuthnSettings; clock: Clock; logger: Logger; events: SecurityEvents }) {
    ({ prisma: this.prisma, challenges: this.challenges, settings: this.settings, clock: this.clock, logger: this.logger, events: this.events } = deps);
  }

  async list(userId: string): Promise<PasskeyView[]> {
    const rows = await this.prisma.passkey.findMany({ where: { userId }, orderBy: { createdAt: 'asc' } });
    return rows.map(toView);
  }

  /** Options for `navigator.credentials.create()`; the user's passkeys are excluded, so one authenticator registers once. */
  async registrationOptions(user: { id: string; username: string }): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const existing = await this.prisma.passkey.findMany({ where: { userId: user.id }, select: { id: true, transports: true } });
    if (existing.length >= MAX_PASSKEYS_PER_USER)
      throw new AppError('too_many_passkeys', `An account holds at most ${MAX_PASSKEYS_PER_USER} passkeys; delete one first.`);
    const options = await generateRegistrationOptions({
      rpName: this.settings.rpName,
      rpID: this.settings.rpId,
      userName: user.username,
      userDisplayName: user.username,
      userID: userHandleOf(user.id),
      timeout: CEREMONY_TIMEOUT_MS,
      attestationType: 'none',
      excludeCredentials: existing.map((row) => ({ id: row.id, transports: row.transports as AuthenticatorTransport[] })),
      // Discoverable when the authenticator can (usernameless sign-in); a key that cannot still serves as a second factor.
      authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
    });
    await this.challenges.put(options.challenge, { kind: 'register', userId: user.id });
    return options;
  }

  /** Verifies the browser's answer to `registrationOptions` and stores the credential. */
  /** Finishes adding a passkey, and records it. */
  async register(userId: string, response: RegistrationResponseJSON, name: string | undefined, client: ClientContext): Promise<PasskeyView> {
    const passkey = await this.store(userId, response, name);
    this.events.record({ type: 'passkey.added', actorId: userId, targetId: userId, details: { passkeyId: passkey.id, name: passkey.name } }, client);
    return passkey;
  }

  private async store(userId: string, response: RegistrationResponseJSON, name: string | undefined): Promise<PasskeyView> {
    await this.claimChallenge(response.response.clientDataJSON, { kind: 'register', userId }, rejectedRegistration);
    let verification;
    try {
      verification = await verifyRegistrationResponse({
        response,
        expectedChallenge: () => true, // claimed above: present, unspent, and issued to this user for this ceremony
        expectedOrigin: this.settings.origins,
        expectedRPID: this.settings.rpId,
        requireUserVerification: false,
      });
    } catch (err) {
      throw rejectedRegistration(reasonOf(err));
    }
    if (!verification.verified) throw rejectedRegistration('signature');
    const info = verification.registrationInfo;
    // The id the client names must be the one inside the authenticator data, which is what gets stored.
    if (info.credential.id !== response.id) throw rejectedRegistration('malformed');
    const now = new Date(this.clock.now());
    try {
      const row = await this.prisma.passkey.create({
        data: {
          id: info.credential.id,
          userId,
          publicKey: Buffer.from(info.credential.publicKey),
          signCount: BigInt(info.credential.counter),
          transports: info.credential.transports ?? [],
          backupEligible: info.credentialDeviceType === 'multiDevice',
          backedUp: info.credentialBackedUp,
          aaguid: info.aaguid,
          name: name ?? `Passkey added ${now.toISOString().slice(0, 10)}`,
          createdAt: now,
        },
      });
      return toView(row);
    } catch (err) {
      if (isUniqueViolation(err)) throw new AppError('passkey_already_registered');
      throw err;
    }
  }

  /**
   * Options for `navigator.credentials.get()`. Sign-in lists no credentials (the authenticator offers the
   * discoverable ones it holds for this site) and needs user verification; a second factor or a step-up lists the
   * user's own and needs only presence.
   */
  async authenticationOptions(ceremony: Exclude<Ceremony, { kind: 'register' }>): Promise<PublicKeyCredentialRequestOptionsJSON> {
    let allowCredentials: { id: string; transports?: AuthenticatorTransport[] }[] | undefined;
    if (ceremony.kind !== 'sign-in') {
      const rows = await this.prisma.passkey.findMany({ where: { userId: ceremony.userId }, select: { id: true, transports: true } });
      if (rows.length === 0) throw new AppError('no_passkey_registered');
      allowCredentials = rows.map((row) => ({ id: row.id, transports: row.transports as AuthenticatorTransport[] }));
    }
    const options = await generateAuthenticationOptions({
      rpID: this.settings.rpId,
      allowCredentials,
      timeout: CEREMONY_TIMEOUT_MS,
      userVerification: ceremony.kind === 'sign-in' ? 'required' : 'preferred',
    });
    await this.challenges.put(options.challenge, ceremony);
    return options;
  }

  /**
   * Checks an assertion against the challenge issued for `ceremony`: the credential must be registered, belong to
   * the ceremony's user (if it has one), and sign the challenge; its counter must move forward. Records the use.
   */
  async verifyAssertion(response: AuthenticationResponseJSON, ceremony: Exclude<Ceremony, { kind: 'register' }>): Promise<VerifiedPasskey> {
    await this.claimChallenge(response.response.clientDataJSON, ceremony, rejectedAssertion);
    const passkey = await this.prisma.passkey.findUnique({ where: { id: response.id } });
    if (!passkey) throw rejectedAssertion('unknown_credential');
    if ('userId' in ceremony && passkey.userId !== ceremony.userId) throw rejectedAssertion('wrong_user');
    const userHandle = response.response.userHandle;
    if (userHandle !== undefined && userHandle !== Buffer.from(userHandleOf(passkey.userId)).toString('base64url')) throw rejectedAssertion('wrong_user');

    let verification;
    try {
      verification = await verifyAuthenticationResponse({
        response,
        expectedChallenge: () => true, // claimed above
        expectedOrigin: this.settings.origins,
        expectedRPID: this.settings.rpId,
        requireUserVerification: ceremony.kind === 'sign-in',
        // The counter is judged below, once the signature is known to be genuine.
        credential: { id: passkey.id, publicKey: new Uint8Array(passkey.publicKey), counter: 0 },
      });
    } catch (err) {
      throw rejectedAssertion(reasonOf(err));
    }
    if (!verification.verified) throw rejectedAssertion('signature');
    const { newCounter, userVerified, credentialBackedUp } = verification.authenticationInfo;
    const stored = passkey.signCount;
    if ((stored > 0n || newCounter > 0) && BigInt(newCounter) <= stored) return this.refuseClone(passkey, newCounter);
    // Conditional on the count read above: of two assertions racing with one count, one wins.
    const updated = await this.prisma.passkey.updateMany({
      where: { id: passkey.id, signCount: stored },
      data: { signCount: BigInt(newCounter), backedUp: credentialBackedUp, lastUsedAt: new Date(this.clock.now()) },
    });
    if (updated.count === 0 && newCounter > 0) return this.refuseClone(passkey, newCounter);
    return { userId: passkey.userId, amr: passkeyAmr(passkey, userVerified) };
  }

  async rename(userId: string, id: string, name: string): Promise<PasskeyView> {
    const { count } = await this.prisma.passkey.updateMany({ where: { id, userId }, data: { name } });
    if (count === 0) throw new AppError('passkey_not_found');
    return toView(await this.prisma.passkey.findUniqueOrThrow({ where: { id } }));
  }

  /**
   * Deletes one of the user's passkeys. Every account has a password today, so a passkey is never its last way in;
   * were password-less accounts added, this is where removing the last passkey must be refused.
   */
  async remove(userId: string, id: string, client: ClientContext): Promise<void> {
    const { count } = await this.prisma.passkey.deleteMany({ where: { id, userId } });
    if (count === 0) throw new AppError('passkey_not_found');
    this.events.record({ type: 'passkey.removed', actorId: userId, targetId: userId, details: { passkeyId: id } }, client);
  }

  /** Takes the challenge the client data names; it must exist, be unspent, and belong to `expected`. */
  private async claimChallenge(clientDataJSON: string, expected: Ceremony, reject: (reason: RejectionReason) => AppError): Promise<void> {
    let clientData;
    try {
      clientData = decodeClientDataJSON(clientDataJSON);
    } catch {
      throw reject('malformed');
    }
    if (typeof clientData.challenge !== 'string' || typeof clientData.origin !== 'string') throw reject('malformed');
    // Taken before anything else is checked: a challenge answers one response, right or wrong.
    const ceremony = await this.challenges.take(clientData.challenge);
    if (!ceremony || !sameCeremony(ceremony, expected)) throw reject('challenge');
    if (!this.settings.origins.includes(clientData.origin)) throw reject('origin');
  }

  private refuseClone(passkey: PasskeyRow, newCounter: number): never {
    this.logger.warn(
      { passkeyId: passkey.id, userId: passkey.userId, storedCount: Number(passkey.signCount), presentedCount: newCounter },
      'refused a passkey whose signature counter went backwards: the authenticator may have been cloned',
    );
    throw rejectedAssertion('counter');
  }
}

function sameCeremony(a: Ceremony, b: Ceremony): boolean {
  if (a.kind !== b.kind) return false;
  if ('userId' in a && 'userId' in b && a.userId !== b.userId) return false;
  if (a.kind === 'reauthenticate' && b.kind === 'reauthenticate' && a.sessionId !== b.sessionId) return false;
  return true;
}
