// The few pages the OpenID provider answers itself (an error it cannot send back to an app, the logout question and
// its answer), in the browser page's style and without scripts.

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (char) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[char] ?? char);

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>authkit · ${escapeHtml(title)}</title>
  <link rel="icon" href="/favicon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="/styles.css">
</head>
<body>
  <header class="bar"><h1>authkit</h1></header>
  <main>
    <section class="card" aria-labelledby="page-title">
      <h2 id="page-title">${escapeHtml(title)}</h2>
      ${body}
    </section>
  </main>
</body>
</html>`;
}

/**
 * A refusal that cannot go back to the app (its redirect URI is not registered, or the client is unknown): said here,
 * never redirected, so a forged request cannot bounce a browser to an address of the forger's choosing.
 */
export function errorPage(out: { error: string; error_description?: string }): string {
  return page(
    'This sign-in request cannot be completed',
    `<p>The app that sent you here made a request this service refuses, so you were not sent back to it.</p>
      <p class="muted"><code>${escapeHtml(out.error)}</code>${out.error_description ? `: ${escapeHtml(out.error_description)}` : ''}</p>
      <p><a href="/">Go to your account</a></p>`,
  );
}

/** RP-initiated logout asks before it signs anyone out (`form` is oidc-provider's, with its anti-forgery field). */
export function logoutPage(form: string, clientName: string | undefined): string {
  return page(
    'Sign out?',
    `<p>${clientName ? `${escapeHtml(clientName)} asks to sign you out.` : 'An app asks to sign you out.'} Signing out here ends your session in every app that signs in with this account.</p>
      ${form}
      <div class="actions">
        <button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
        <button class="secondary" type="submit" form="op.logoutForm">No, stay signed in</button>
      </div>`,
  );
}

export function loggedOutPage(clientName: string | undefined): string {
  return page(
    'You are signed out',
    `<p>${clientName ? `You have signed out of ${escapeHtml(clientName)}.` : 'You have signed out.'}</p><p><a href="/">Sign in again</a></p>`,
  );
}
