// The notices an account's owner gets by email, sent because a security event happened, never called by a flow.
import type { SecurityEventBus, SecurityEvent } from '../../kernel/events/security-events.js';
import type { EmailService } from './email-service.js';

/** Which events mail their account's owner, and what the notice says beside the time. */
function noticeFor(event: SecurityEvent): NoticeCall | undefined {
  const detail = (key: string): string => {
    const value = event.details?.[key];
    return typeof value === 'string' ? value : '';
  };
  const name = detail('name');
  switch (event.type) {
    case 'password.changed':
      return ['password-changed', {}];
    case 'mfa.enabled':
      return ['mfa-enabled', {}];
    case 'mfa.disabled':
      return ['mfa-disabled', {}];
    case 'api_key.created':
      return ['api-key-created', { keyName: name }];
    case 'passkey.added':
      return ['passkey-added', { passkeyName: name }];
    case 'identity.linked':
      return ['identity-linked', { providerName: detail('providerName'), providerEmail: detail('providerEmail') || 'no address given' }];
    default:
      return undefined;
  }
}

type NoticeCall = [Parameters<EmailService['notify']>[1], Record<string, string>];

/**
 * Subscribes the owner's notices to the bus: a changed password, two-factor on or off, a new API key, passkey or linked outside sign-in, and
 * a sign-in from a browser new to the account. Each is sent in the background and never fails what caused it.
 */
export function subscribeNotices(bus: SecurityEventBus, email: EmailService): void {
  bus.subscribe((event, context) => {
    if (!event.targetId) return;
    if (event.type === 'session.signed_in') {
      if (event.details?.newBrowser === true) email.notifyNewSignIn(event.targetId, context);
      return;
    }
    const notice = noticeFor(event);
    if (notice) email.notify(event.targetId, ...notice);
  });
}
