// A software WebAuthn authenticator for API tests: real P-256 keys, real CBOR, real signatures, so the server's
// verifier (SimpleWebAuthn) sees exactly what a browser would send. The browser test uses Chromium's own.
import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import { isoCBOR } from '@simplewebauthn/server/helpers';

const FLAG_UP = 0x01;
const FLAG_UV = 0x04;
const FLAG_BE = 0x08;
const FLAG_BS = 0x10;
const FLAG_AT = 0x40;

interface Credential {
  id: Buffer;
  privateKey: KeyObject;
  publicKey: KeyObject;
  userHandle: string;
  rpId: string;
  counter: number;
}

export interface AuthenticatorOptions {
  origin: string;
  /** A synced passkey (backup eligible and backed up) rather than a device-bound one. */
  synced?: boolean;
  /** Whether it verifies the user (PIN, biometrics); presence is always tested. */
  verifiesUser?: boolean;
  /** Keeps a signature counter (most security keys) or always reports 0 (most synced passkeys). */
  keepsCounter?: boolean;
}

/** What a test may change in one response, to forge or tamper with it. */
export interface ResponseOverrides {
  origin?: string;
  challenge?: string;
  rpId?: string;
  type?: string;
  counter?: number;
}

export interface RegistrationJSON {
  id: string;
  rawId: string;
  type: 'public-key';
  response: { clientDataJSON: string; attestationObject: string; transports: string[] };
  authenticatorAttachment: 'cross-platform';
  clientExtensionResults: Record<string, never>;
}

export interface AssertionJSON {
  id: string;
  rawId: string;
  type: 'public-key';
  response: { clientDataJSON: string; authenticatorData: string; signature: string; userHandle?: string };
  authenticatorAttachment: 'cross-platform';
  clientExtensionResults: Record<string, never>;
}

const b64url = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');
const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest();

function coseKey(publicKey: KeyObject): Uint8Array {
  const jwk = publicKey.export({ format: 'jwk' });
  return isoCBOR.encode(
    new Map<number, number | Uint8Array>([
      [1, 2], // kty: EC2
      [3, -7], // alg: ES256
      [-1, 1], // crv: P-256
      [-2, new Uint8Array(Buffer.from(jwk.x ?? '', 'base64url'))],
      [-3, new Uint8Array(Buffer.from(jwk.y ?? '', 'base64url'))],
    ]),
  );
}

export class SoftAuthenticator {
  readonly credentials: Credential[] = [];

  constructor(private readonly options: AuthenticatorOptions) {}

  private flags(extra: number): number {
    const backup = this.options.synced ? FLAG_BE | FLAG_BS : 0;
    return FLAG_UP | (this.options.verifiesUser === false ? 0 : FLAG_UV) | backup | extra;
  }

  private clientData(type: string, challenge: string, overrides: ResponseOverrides): Buffer {
    return Buffer.from(
      JSON.stringify({
        type: overrides.type ?? type,
        challenge: overrides.challenge ?? challenge,
        origin: overrides.origin ?? this.options.origin,
        crossOrigin: false,
      }),
    );
  }

  /** Answers navigator.credentials.create() options, keeping the new credential. */
  create(options: { challenge: string; rp: { id?: string }; user: { id: string } }, overrides: ResponseOverrides = {}, again?: Credential): RegistrationJSON {
    const rpId = overrides.rpId ?? options.rp.id ?? 'localhost';
    // `again`: register a credential this authenticator already holds (one that ignores excludeCredentials).
    const credential: Credential = again ?? {
      id: randomBytes(16),
      ...generateKeyPairSync('ec', { namedCurve: 'P-256' }),
      userHandle: options.user.id,
      rpId,
      counter: 0,
    };
    const { publicKey } = credential;
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(credential.id.length);
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(overrides.counter ?? 0);
    const authData = Buffer.concat([sha256(rpId), Buffer.from([this.flags(FLAG_AT)]), counter, Buffer.alloc(16), idLength, credential.id, coseKey(publicKey)]);
    const attestationStatement = new Map<string, string>();
    const attestationObject = isoCBOR.encode(
      new Map<string, string | Map<string, string> | Uint8Array>([
        ['fmt', 'none'],
        ['attStmt', attestationStatement],
        ['authData', new Uint8Array(authData)],
      ]),
    );
    if (!again) this.credentials.push(credential);
    return {
      id: b64url(credential.id),
      rawId: b64url(credential.id),
      type: 'public-key',
      response: {
        clientDataJSON: b64url(this.clientData('webauthn.create', options.challenge, overrides)),
        attestationObject: b64url(attestationObject),
        transports: ['usb'],
      },
      authenticatorAttachment: 'cross-platform',
      clientExtensionResults: {},
    };
  }

  /** Answers navigator.credentials.get() options with the first credential allowed (or the first held). */
  get(
    options: { challenge: string; rpId?: string; allowCredentials?: { id: string }[] },
    overrides: ResponseOverrides = {},
    credential = this.pick(options),
  ): AssertionJSON {
    const rpId = overrides.rpId ?? options.rpId ?? credential.rpId;
    if (this.options.keepsCounter !== false) credential.counter += 1;
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(overrides.counter ?? (this.options.keepsCounter === false ? 0 : credential.counter));
    const authenticatorData = Buffer.concat([sha256(rpId), Buffer.from([this.flags(0)]), counter]);
    const clientDataJSON = this.clientData('webauthn.get', options.challenge, overrides);
    const signature = sign('sha256', Buffer.concat([authenticatorData, sha256(clientDataJSON)]), credential.privateKey);
    return {
      id: b64url(credential.id),
      rawId: b64url(credential.id),
      type: 'public-key',
      response: {
        clientDataJSON: b64url(clientDataJSON),
        authenticatorData: b64url(authenticatorData),
        signature: b64url(signature),
        userHandle: credential.userHandle,
      },
      authenticatorAttachment: 'cross-platform',
      clientExtensionResults: {},
    };
  }

  private pick(options: { allowCredentials?: { id: string }[] }): Credential {
    const allowed = options.allowCredentials?.map((entry) => entry.id);
    const credential = this.credentials.find((candidate) => !allowed || allowed.length === 0 || allowed.includes(b64url(candidate.id)));
    if (!credential) throw new Error('this authenticator holds no credential the options allow');
    return credential;
  }
}
