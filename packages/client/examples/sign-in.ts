import { type AuthEvent, createAuthClient } from '@authkit/client';

export async function signInExample(baseUrl: string, username: string, password: string) {
  const auth = createAuthClient({ baseUrl }); // storage: memory unless you pass localStorage or your own
  const events: AuthEvent[] = [];
  auth.onAuthStateChange((event) => events.push(event)); // 'SIGNED_IN' | 'TOKEN_REFRESHED' | 'SIGNED_OUT'

  const result = await auth.signIn.password({ username, password });
  if (result.status === 'mfa_required') throw new Error('answer with auth.signIn.secondFactor({ mfaToken, code })');

  const res = await auth.fetch('/me'); // sends the access token, refreshed as needed
  const me = (await res.json()) as { username: string };

  await auth.signOut();
  return { me, events };
}
