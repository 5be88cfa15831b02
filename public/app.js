// The browser page: sign up or in, keep the access token in memory, upload with progress, and manage your images.

const $ = (selector) => document.querySelector(selector);
const REFRESH_KEY = 'authkit.refresh';

const state = {
  accessToken: null,
  refreshTimer: null,
  user: null,
  mfaToken: null,
  /** What the page shows, kept so a change updates it without asking for everything again. */
  images: [],
  keys: [],
  passkeys: [],
  settingsLoaded: false,
};

class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super(body?.error?.message ?? `Request failed (${status})`);
    this.status = status;
    this.code = body?.error?.code;
    this.details = body?.error?.details;
    this.retryAfter = retryAfter;
  }
}

/** A sentence a person can act on, from whatever went wrong. */
function describe(error) {
  if (!(error instanceof ApiError)) return 'The server could not be reached. Check your connection and try again.';
  if (error.status === 429) return `Too many requests. Try again in ${error.retryAfter ?? error.details?.retryAfterSeconds ?? 60} seconds.`;
  if (error.status === 413) return 'That file is too large.';
  if (error.status === 415) return 'Only PNG, JPEG, GIF and WebP images are accepted.';
  if (Array.isArray(error.details) && error.details.length > 0) {
    return `${error.message} ${error.details.map((detail) => `${detail.path || 'request'}: ${detail.message}`).join('; ')}`;
  }
  return error.message;
}

function say(message, kind = 'ok') {
  const status = $('#status');
  status.textContent = message;
  status.className = `status ${kind}`;
}

async function parse(response) {
  if (response.status === 204) return null;
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, body, response.headers.get('Retry-After'));
  return body;
}

async function send(path, { method = 'GET', body, auth = true } = {}) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (auth && state.accessToken) headers.Authorization = `Bearer ${state.accessToken}`;
  return fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

async function errorCode(response) {
  const body = await response.clone().json().catch(() => null);
  return body?.error?.code;
}

/**
 * Calls the API. An expired access token is refreshed once, transparently; a change that needs a recent sign-in
 * asks for the password (and a code when two-factor is on) and is tried again.
 */
async function api(path, options = {}) {
  let response = await send(path, options);
  if (response.status === 401 && options.auth !== false) {
    const retry = (await errorCode(response)) === 'reauthentication_required' ? await reauthenticate() : await refresh();
    if (retry) response = await send(path, options);
  }
  // Adding the first second factor needs two proofs in one session: the password and an emailed code.
  if (response.status === 403 && (await errorCode(response)) === 'second_proof_required') {
    const body = await response.clone().json().catch(() => null);
    if (await proveAgain(body?.error?.details?.accepted ?? [])) response = await send(path, options);
  }
  // A read that met a spent budget waits as long as the server says, once, and tries again by itself. A change the
  // person asked for is not repeated behind their back: they are told when to try again.
  if (response.status === 429 && (options.method ?? 'GET') === 'GET') {
    const seconds = Math.min(Number(response.headers.get('Retry-After')) || 5, 60);
    say(`Busy: trying again in ${seconds} seconds…`, 'error');
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    response = await send(path, options);
    if (response.ok) say('');
  }
  return parse(response);
}

/** Asks the person to confirm who they are; true once the server has issued an access token that says so. */
async function reauthenticate() {
  // With a passkey on this account, the browser's own prompt is the quickest proof; the password remains the fallback.
  if (state.passkeys.length > 0 && passkeysSupported()) {
    try {
      const { startAuthentication } = await passkeyApi();
      const options = await parse(await send('/reauthenticate/passkey/options', { method: 'POST' }));
      const response = await startAuthentication({ optionsJSON: options });
      state.accessToken = (await parse(await send('/reauthenticate/passkey', { method: 'POST', body: { response } }))).access_token;
      return true;
    } catch {
      // Cancelled, or this device holds none of them: ask for the password instead.
    }
  }
  const password = window.prompt('For your security, please enter your password again.');
  if (!password) return false;
  let response = await send('/reauthenticate', { method: 'POST', body: { password } });
  if (response.status === 401 && (await errorCode(response)) === 'invalid_mfa_code') {
    const code = window.prompt('Two-factor is on: enter a code from your authenticator app, or a recovery code.');
    if (!code) return false;
    response = await send('/reauthenticate', { method: 'POST', body: { password, code } });
  }
  state.accessToken = (await parse(response)).access_token;
  return true;
}

/**
 * The second proof a first second factor needs: after a password sign-in a code mailed to the proven address, after
 * an emailed-code sign-in the password. True once the server has issued an access token holding both.
 */
async function proveAgain(accepted) {
  if (accepted.includes('email_code')) {
    await parse(await send('/reauthenticate/email-code/send', { method: 'POST' }));
    const code = window.prompt('To add a second factor we need a second proof: enter the six-digit code we just emailed you.');
    if (!code) return false;
    state.accessToken = (await parse(await send('/reauthenticate/email-code', { method: 'POST', body: { code: code.trim() } }))).access_token;
    return true;
  }
  if (accepted.includes('password')) {
    const password = window.prompt('To add a second factor we need a second proof: enter your password.');
    if (!password) return false;
    state.accessToken = (await parse(await send('/reauthenticate', { method: 'POST', body: { password } }))).access_token;
    return true;
  }
  return false;
}

function useTokens(tokens) {
  state.accessToken = tokens.access_token;
  state.user = tokens.user;
  sessionStorage.setItem(REFRESH_KEY, tokens.refresh_token);
  clearTimeout(state.refreshTimer);
  // Refresh a little before expiry so requests rarely meet an expired token.
  state.refreshTimer = setTimeout(() => void refresh(), Math.max(5, tokens.expires_in - 30) * 1000);
}

let refreshing = null;
/** Exchanges the refresh token for a new pair; resolves false (and signs out) if that is no longer possible. */
function refresh() {
  const refreshToken = sessionStorage.getItem(REFRESH_KEY);
  if (!refreshToken) return Promise.resolve(false);
  refreshing ??= (async () => {
    try {
      const response = await send('/refresh', { method: 'POST', body: { refresh_token: refreshToken }, auth: false });
      useTokens(await parse(response));
      return true;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) signedOut('Your session has ended. Please log in again.');
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

function signedOut(message) {
  state.accessToken = null;
  state.user = null;
  clearTimeout(state.refreshTimer);
  sessionStorage.removeItem(REFRESH_KEY);
  $('#signed-in').hidden = true;
  $('#signed-out').hidden = false;
  $('#logout').hidden = true;
  $('#whoami').hidden = true;
  $('#gallery').replaceChildren();
  showTab('login');
  if (message) say(message, 'error');
}

async function signedIn() {
  $('#signed-out').hidden = true;
  $('#signed-in').hidden = false;
  $('#logout').hidden = false;
  $('#whoami').hidden = false;
  $('#whoami').textContent = `Signed in as ${state.user.username}`;
  showVerificationBanner();
  setSecondStep(false);
  state.mfaToken = null;
  state.settingsLoaded = false;
  if ($('#settings').open) void loadSettings();
  await loadImages();
}

// --- Sign in, sign up, sign out ------------------------------------------------

function showTab(which) {
  const login = which === 'login';
  $('#tab-login').setAttribute('aria-selected', String(login));
  $('#tab-register').setAttribute('aria-selected', String(!login));
  $('#login-form').hidden = !login;
  $('#register-form').hidden = login;
}

async function withBusy(form, work) {
  const button = form.querySelector('button[type=submit]');
  button.disabled = true;
  say('');
  try {
    await work();
  } catch (error) {
    say(describe(error), 'error');
  } finally {
    button.disabled = false;
  }
}

async function onLogin(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const data = new FormData(form);
  await withBusy(form, async () => {
    try {
      await loginStep(form, data);
    } catch (error) {
      // The address is not confirmed yet: offer to send the link again, to the address typed if it is one.
      if (error instanceof ApiError && error.code === 'email_not_verified') {
        const typed = String(data.get('username'));
        showEmailForm('resend', typed.includes('@') ? typed : '');
      }
      throw error;
    }
  });
}

async function loginStep(form, data) {
  const result = state.mfaToken
    ? await api('/login/mfa', { method: 'POST', body: { mfa_token: state.mfaToken, code: String(data.get('code')).trim() }, auth: false })
    : await api('/login', { method: 'POST', body: { username: data.get('username'), password: data.get('password') }, auth: false });
  if (result.mfa_required) askSecondFactor(result);
  else await welcome(result);
}

/** The first step passed (password or emailed code) and two-factor is on: the login form asks for the second. */
function askSecondFactor(result) {
  state.mfaToken = result.mfa_token;
  setSecondStep(true);
  $('#mfa-passkey').hidden = !(result.methods ?? []).includes('passkey') || !passkeysSupported();
  $('#login-form').elements.code.focus();
  say('Enter the code from your authenticator app.');
}

/** In the second step the login form shows the code field only. */
function setSecondStep(on) {
  const form = $('#login-form');
  for (const name of ['username', 'password']) {
    form.elements[name].required = !on;
    form.elements[name].closest('label').hidden = on;
  }
  $('#mfa-step').hidden = !on;
  if (!on) $('#mfa-passkey').hidden = true;
}

/** After any way of signing in: keep the tokens, clear the form, and show the signed-in page. */
async function welcome(tokens) {
  $('#login-form').reset();
  useTokens(tokens);
  say(`Welcome, ${tokens.user.username}.`);
  await signedIn();
}

// --- By email: confirm the address, reset the password, sign in with a code -------------

const EMAIL_FORMS = {
  forgot: { title: 'Reset your password', path: '/password/forgot' },
  code: { title: 'Sign in with a code sent to your email', path: '/login/email-code' },
  resend: { title: 'Send the confirmation link again', path: '/email/verify/resend' },
};
let emailFormMode = 'forgot';
/** The address a sign-in code was sent to, for the code form. */
let codeEmail = null;

function showEmailForm(mode, email = '') {
  emailFormMode = mode;
  $('#email-form-title').textContent = EMAIL_FORMS[mode].title;
  const form = $('#email-form');
  if (email) form.elements.email.value = email;
  form.hidden = false;
  $('#code-form').hidden = true;
  form.elements.email.focus();
}

async function onEmailForm(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const email = String(new FormData(form).get('email')).trim();
  await withBusy(form, async () => {
    // The answer is the same whether or not the address has an account; so is what the page says.
    const result = await api(EMAIL_FORMS[emailFormMode].path, { method: 'POST', body: { email }, auth: false });
    say(result.message);
    if (emailFormMode === 'code') {
      codeEmail = email;
      form.hidden = true;
      $('#code-form').hidden = false;
      $('#code-form').elements.code.focus();
    }
  });
}

async function onCodeForm(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const code = String(new FormData(form).get('code')).trim();
  await withBusy(form, async () => {
    const result = await api('/login/email-code/verify', { method: 'POST', body: { email: codeEmail, code }, auth: false });
    form.reset();
    form.hidden = true;
    // Two-factor still applies: the login form's second step finishes it.
    if (result.mfa_required) askSecondFactor(result);
    else await welcome(result);
  });
}

async function onResetForm(event) {
  event.preventDefault();
  const form = event.currentTarget;
  await withBusy(form, async () => {
    const fields = new FormData(form);
    const body = { token: form.dataset.token, password: String(fields.get('password')), removeCredentials: fields.get('removeCredentials') === 'on' };
    await api('/password/reset', { method: 'POST', body, auth: false });
    form.reset();
    form.hidden = true;
    showTab('login');
    say('Your password is changed, and every session was signed out. Log in with the new password.');
  });
}

function showVerificationBanner() {
  const unconfirmed = state.user && state.user.emailVerified === false;
  $('#verify-banner').hidden = !unconfirmed;
  if (unconfirmed) $('#verify-address').textContent = state.user.email;
}

async function onResendVerification(event) {
  const button = event.currentTarget;
  button.disabled = true;
  try {
    say((await api('/email/verify/resend', { method: 'POST', body: { email: state.user.email }, auth: false })).message);
  } catch (error) {
    say(describe(error), 'error');
  } finally {
    button.disabled = false;
  }
}

/** Links in our emails carry their token in the fragment (#verify-email=… or #reset-password=…): act on it once. */
async function followEmailLink() {
  const match = /^#(verify-email|reset-password)=([A-Za-z0-9_-]+)$/.exec(window.location.hash);
  if (!match) return;
  window.history.replaceState(null, '', window.location.pathname + window.location.search);
  const [, action, token] = match;
  if (action === 'reset-password') {
    const form = $('#reset-form');
    form.dataset.token = token;
    form.hidden = false;
    form.elements.password.focus();
    say('Choose a new password for your account.');
    return;
  }
  try {
    const user = await api('/email/verify', { method: 'POST', body: { token }, auth: false });
    if (state.user?.id === user.id) {
      state.user = user;
      showVerificationBanner();
      $('#whoami').textContent = `Signed in as ${user.username}`;
    }
    say(`Thank you: ${user.email} is confirmed.`);
  } catch (error) {
    say(describe(error), 'error');
  }
}

// --- Passkeys ---------------------------------------------------------------------

let webauthn;
/** SimpleWebAuthn's browser half, served from the installed package, loaded the first time a passkey is used. */
function passkeyApi() {
  webauthn ??= import('@simplewebauthn/browser');
  return webauthn;
}

function passkeysSupported() {
  return typeof window.PublicKeyCredential === 'function';
}

/** A sentence for what the browser or the server said about a passkey ceremony. */
function describePasskeyError(error) {
  if (error instanceof ApiError) {
    if (error.code === 'invalid_passkey' && error.details?.reason === 'unknown_credential') return 'That passkey is not registered here (it may have been deleted). Sign in with your password.';
    return describe(error);
  }
  // SimpleWebAuthn passes the browser's DOMException on as the cause.
  const name = error?.cause?.name ?? error?.name;
  if (name === 'NotAllowedError' || name === 'AbortError') return 'The passkey request was cancelled or timed out. Nothing was changed.';
  if (name === 'InvalidStateError') return 'This authenticator already holds a passkey for your account.';
  if (name === 'SecurityError') return 'This browser refused passkeys on this address: they need HTTPS, or localhost.';
  if (name === 'NotSupportedError') return 'This browser or authenticator cannot create a passkey.';
  return 'The passkey request failed. Try again, or use your password.';
}

/** Runs a passkey ceremony behind a button: disabled meanwhile, and any refusal said in words. */
async function withPasskeyButton(button, work) {
  button.disabled = true;
  say('');
  try {
    await work();
  } catch (error) {
    say(describePasskeyError(error), 'error');
  } finally {
    button.disabled = false;
  }
}

async function onPasskeyLogin(event) {
  await withPasskeyButton(event.currentTarget, async () => {
    const { startAuthentication } = await passkeyApi();
    const options = await api('/login/passkey/options', { method: 'POST', auth: false });
    const response = await startAuthentication({ optionsJSON: options });
    const tokens = await api('/login/passkey', { method: 'POST', body: { response }, auth: false });
    await welcome(tokens);
  });
}

async function onMfaPasskey(event) {
  await withPasskeyButton(event.currentTarget, async () => {
    const { startAuthentication } = await passkeyApi();
    const options = await api('/login/mfa/passkey/options', { method: 'POST', body: { mfa_token: state.mfaToken }, auth: false });
    const response = await startAuthentication({ optionsJSON: options });
    const tokens = await api('/login/mfa/passkey', { method: 'POST', body: { mfa_token: state.mfaToken, response }, auth: false });
    await welcome(tokens);
  });
}

function renderPasskeys(passkeys) {
  const items = passkeys.map((passkey) => {
    const item = document.createElement('li');
    const kind = passkey.deviceType === 'multiDevice' ? 'synced' : 'on one device';
    const used = passkey.lastUsedAt ? `last used ${new Date(passkey.lastUsedAt).toLocaleString()}` : 'not used yet';
    item.textContent = `${passkey.name} (${kind}, added ${new Date(passkey.createdAt).toLocaleDateString()}, ${used}) `;
    const rename = document.createElement('button');
    rename.type = 'button';
    rename.className = 'secondary small';
    rename.textContent = 'Rename';
    rename.setAttribute('aria-label', `Rename ${passkey.name}`);
    rename.addEventListener('click', () => void renamePasskey(passkey));
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.className = 'danger small';
    remove.textContent = 'Delete';
    remove.setAttribute('aria-label', `Delete ${passkey.name}`);
    remove.addEventListener('click', () => void deletePasskey(passkey));
    item.append(rename, ' ', remove);
    return item;
  });
  $('#passkeys').replaceChildren(...items);
}

async function onPasskeyAdd(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const name = String(new FormData(form).get('name')).trim();
  await withPasskeyButton(form.querySelector('button[type=submit]'), async () => {
    const { startRegistration } = await passkeyApi();
    const options = await api('/passkeys/register/options', { method: 'POST' });
    const response = await startRegistration({ optionsJSON: options });
    const passkey = await api('/passkeys/register', { method: 'POST', body: { response, ...(name && { name }) } });
    form.reset();
    state.passkeys = [...state.passkeys, passkey];
    renderPasskeys(state.passkeys);
    say(`Passkey "${passkey.name}" added. You can now sign in with it.`);
  });
}

async function renamePasskey(passkey) {
  const name = window.prompt('New name for this passkey:', passkey.name)?.trim();
  if (!name || name === passkey.name) return;
  say('');
  try {
    const renamed = await api(`/passkeys/${passkey.id}`, { method: 'PATCH', body: { name } });
    state.passkeys = state.passkeys.map((other) => (other.id === renamed.id ? renamed : other));
    renderPasskeys(state.passkeys);
    say(`Renamed to ${renamed.name}.`);
  } catch (error) {
    say(describe(error), 'error');
  }
}

async function deletePasskey(passkey) {
  if (!window.confirm(`Delete the passkey "${passkey.name}"? It will no longer sign you in.`)) return;
  say('');
  try {
    await api(`/passkeys/${passkey.id}`, { method: 'DELETE' });
    state.passkeys = state.passkeys.filter((other) => other.id !== passkey.id);
    renderPasskeys(state.passkeys);
    say(`Deleted the passkey ${passkey.name}. Remove it from your device too, so it stops offering it.`);
  } catch (error) {
    say(describe(error), 'error');
  }
}

const STRENGTH_LABELS = ['Very weak', 'Weak', 'Fair', 'Strong', 'Very strong'];
let estimator;

/** The same estimator the server uses (zxcvbn), loaded from the installed package the first time it is needed. */
function passwordEstimator() {
  estimator ??= Promise.all([import('@zxcvbn-ts/core'), import('@zxcvbn-ts/language-common'), import('@zxcvbn-ts/language-en')]).then(
    ([{ ZxcvbnFactory }, common, english]) =>
      new ZxcvbnFactory({ translations: english.translations, graphs: common.adjacencyGraphs, dictionary: { ...common.dictionary, ...english.dictionary } }),
  );
  return estimator;
}

let strengthTimer;
/** Shows how guessable the password being typed is; the server has the last word when the form is sent. */
function onPasswordInput(event) {
  const form = event.currentTarget.form;
  const password = event.currentTarget.value;
  const box = form.querySelector('.strength');
  clearTimeout(strengthTimer);
  if (password === '') {
    box.hidden = true;
    return;
  }
  strengthTimer = setTimeout(async () => {
    let result;
    try {
      result = (await passwordEstimator()).check(password, [form.elements.username.value, form.elements.email.value].filter(Boolean));
    } catch {
      return; // No meter is better than a wrong one; the server still checks.
    }
    if (form.elements.password.value !== password) return;
    box.hidden = false;
    $('#password-strength').value = result.score;
    const advice = result.feedback.warning || result.feedback.suggestions[0] || '';
    $('#password-hint').textContent = `${STRENGTH_LABELS[result.score]}.${advice ? ` ${advice}` : ''}`;
  }, 150);
}

async function onRegister(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const data = Object.fromEntries(new FormData(form));
  await withBusy(form, async () => {
    await api('/register', { method: 'POST', body: data, auth: false });
    const tokens = await api('/login', { method: 'POST', body: { username: data.username, password: data.password }, auth: false });
    form.reset();
    form.querySelector('.strength').hidden = true;
    useTokens(tokens);
    say(`Account created. Welcome, ${tokens.user.username}.`);
    await signedIn();
  });
}

async function onLogout() {
  try {
    await api('/logout', { method: 'POST' });
  } catch (error) {
    // An ended session answers 401: it is over either way. Anything else means the server did not end it.
    if (!(error instanceof ApiError && error.status === 401)) {
      say(`The session could not be ended on the server, so you are still signed in: ${describe(error)}`, 'error');
      return;
    }
  }
  signedOut();
  say('You are logged out.');
}

// --- Images ----------------------------------------------------------------------

function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function renderImages(images) {
  const items = images.map((image) => {
    const item = $('#image-item').content.firstElementChild.cloneNode(true);
    const img = item.querySelector('img');
    img.src = image.url;
    img.alt = image.name;
    item.querySelector('.name').textContent = image.name;
    item.querySelector('.size').textContent = `${image.width}×${image.height} · ${formatSize(image.size)}`;
    const button = item.querySelector('button');
    button.setAttribute('aria-label', `Delete ${image.name}`);
    button.addEventListener('click', () => void deleteImage(image, button));
    return item;
  });
  $('#gallery').replaceChildren(...items);
  $('#empty').hidden = images.length > 0;
}

async function loadImages() {
  try {
    const page = await api('/images?pageSize=100');
    state.images = page.images;
    $('#upload-limit').textContent = `, at most ${formatSize(page.maxUploadBytes)}`;
    renderImages(state.images);
  } catch (error) {
    say(`Your images could not be loaded. ${describe(error)}`, 'error');
  }
}

async function deleteImage(image, button) {
  button.disabled = true;
  say('');
  try {
    await api(`/images/${image.id}`, { method: 'DELETE' });
    say(`Deleted ${image.name}.`);
    state.images = state.images.filter((other) => other.id !== image.id);
    renderImages(state.images);
  } catch (error) {
    button.disabled = false;
    say(describe(error), 'error');
  }
}

/** XMLHttpRequest rather than fetch: it reports upload progress. */
function uploadWithProgress(file, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open('POST', '/images');
    request.setRequestHeader('Authorization', `Bearer ${state.accessToken}`);
    request.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable) onProgress(Math.round((event.loaded / event.total) * 100));
    });
    request.addEventListener('load', () => {
      let body = null;
      try {
        body = JSON.parse(request.responseText);
      } catch {
        // Not JSON: described by status alone.
      }
      if (request.status >= 200 && request.status < 300) resolve(body);
      else reject(new ApiError(request.status, body, request.getResponseHeader('Retry-After')));
    });
    request.addEventListener('error', () => reject(new Error('network')));
    const form = new FormData();
    form.append('image', file);
    request.send(form);
  });
}

async function onUpload(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const file = $('#file').files[0];
  if (!file) return;
  const wrap = $('#progress-wrap');
  const setProgress = (percent) => {
    $('#progress').value = percent;
    $('#progress-text').textContent = `${percent}%`;
  };
  setProgress(0);
  wrap.hidden = false;
  await withBusy(form, async () => {
    let image;
    try {
      image = await uploadWithProgress(file, setProgress);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401 && (await refresh()))) throw error;
      image = await uploadWithProgress(file, setProgress);
    }
    setProgress(100);
    form.reset();
    say(`Uploaded ${file.name}.`);
    // The answer describes the new image, signed URL included: shown without asking for the whole list again.
    state.images = [image, ...state.images];
    renderImages(state.images);
  });
  wrap.hidden = true;
}

// --- Settings: API keys and two-factor -------------------------------------------

/** Reads the settings once they are opened, and again only after a change that needs it. */
async function loadSettings() {
  state.settingsLoaded = true;
  $('#mfa-state').textContent = 'Loading…';
  try {
    const [keys, mfa, passkeys, activity] = await Promise.all([
      api('/api-keys'),
      api('/mfa'),
      passkeysSupported() ? api('/passkeys') : { passkeys: [] },
      api('/me/security-events?pageSize=10'),
    ]);
    renderSecurityEvents(activity.events);
    state.keys = keys.keys;
    renderKeys(state.keys);
    state.passkeys = passkeys.passkeys;
    renderPasskeys(state.passkeys);
    renderMfa(mfa.enabled);
  } catch (error) {
    state.settingsLoaded = false;
    // Nothing shown is better than a guess: no empty key list, no "off" that may be wrong.
    $('#keys').replaceChildren();
    $('#passkeys').replaceChildren();
    $('#security-events').replaceChildren();
    $('#mfa-state').textContent = 'Your settings could not be loaded. Close and open Settings to try again.';
    $('#mfa-start').hidden = true;
    $('#mfa-disable').hidden = true;
    say(describe(error), 'error');
  }
}

const EVENT_LABELS = {
  'user.registered': 'Account created',
  'session.signed_in': 'Signed in',
  'session.sign_in_failed': 'Failed sign-in',
  'session.signed_out': 'Signed out',
  'session.signed_out_everywhere': 'Signed out everywhere',
  'session.refresh_reuse_detected': 'A stolen session token was used; that session was ended',
  'password.changed': 'Password changed',
  'password.reset': 'Password reset by email',
  'email.changed': 'Email address changed',
  'mfa.enabled': 'Two-factor turned on',
  'mfa.disabled': 'Two-factor turned off',
  'mfa.recovery_code_used': 'Recovery code used',
  'passkey.added': 'Passkey added',
  'passkey.removed': 'Passkey deleted',
  'api_key.created': 'API key created',
  'api_key.revoked': 'API key revoked',
  'role.granted': 'Role granted',
  'role.revoked': 'Role removed',
  'account.disabled': 'Account disabled',
  'account.enabled': 'Account enabled',
};

/** The newest security events of the account: what happened, when, and from where. */
function renderSecurityEvents(events) {
  const items = events.map((event) => {
    const item = document.createElement('li');
    const how = event.details?.method ? ` (${String(event.details.method).replaceAll('_', ' ')})` : '';
    const where = [event.ip, event.userAgent?.slice(0, 60)].filter(Boolean).join(', ');
    item.textContent = `${EVENT_LABELS[event.type] ?? event.type}${how} · ${new Date(event.createdAt).toLocaleString()}${where ? ` · ${where}` : ''}`;
    return item;
  });
  $('#security-events').replaceChildren(...items);
}

function renderKeys(keys) {
  const items = keys.map((key) => {
    const item = document.createElement('li');
    const used = key.lastUsedAt ? `last used ${new Date(key.lastUsedAt).toLocaleString()}` : 'never used';
    item.textContent = `${key.name} (${key.prefix}…, ${key.scopes.join(', ')}, ${used}) `;
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'danger small';
    button.textContent = 'Revoke';
    button.setAttribute('aria-label', `Revoke ${key.name}`);
    button.addEventListener('click', async () => {
      say('');
      try {
        await api(`/api-keys/${key.id}`, { method: 'DELETE' });
        say(`Revoked ${key.name}.`);
        state.keys = state.keys.filter((other) => other.id !== key.id);
        renderKeys(state.keys);
      } catch (error) {
        say(describe(error), 'error');
      }
    });
    item.append(button);
    return item;
  });
  $('#keys').replaceChildren(...items);
}

async function onCreateKey(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const data = new FormData(form);
  await withBusy(form, async () => {
    const created = await api('/api-keys', { method: 'POST', body: { name: data.get('name'), scopes: data.getAll('scopes') } });
    const shown = $('#new-key');
    shown.textContent = `Your new key (shown only once): ${created.key}`;
    shown.hidden = false;
    form.reset();
    const { key: _secret, ...described } = created;
    state.keys = [...state.keys, described];
    renderKeys(state.keys);
  });
}

function renderMfa(enabled) {
  $('#mfa-state').textContent = enabled ? 'Two-factor authentication is on.' : 'Two-factor authentication is off.';
  $('#mfa-start').hidden = enabled;
  $('#mfa-disable').hidden = !enabled;
  if (enabled) $('#mfa-setup').hidden = true;
}

async function onMfaStart() {
  // One secret per setup: the button is gone until this one is finished or abandoned.
  $('#mfa-start').hidden = true;
  say('');
  try {
    const setup = await api('/mfa/totp/setup', { method: 'POST' });
    $('#mfa-qr').src = setup.qrCode;
    $('#mfa-secret').textContent = setup.secret;
    $('#mfa-setup').hidden = false;
    $('#mfa-recovery').hidden = true;
  } catch (error) {
    $('#mfa-start').hidden = false;
    say(describe(error), 'error');
  }
}

async function onMfaEnable(event) {
  event.preventDefault();
  const form = event.currentTarget;
  await withBusy(form, async () => {
    const result = await api('/mfa/totp/enable', { method: 'POST', body: { code: String(new FormData(form).get('code')).trim() } });
    $('#mfa-codes').textContent = result.recoveryCodes.join('\n');
    $('#mfa-recovery').hidden = false;
    form.reset();
    say('Two-factor authentication is on.');
    renderMfa(true);
  });
}

async function onMfaDisable(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const data = new FormData(form);
  await withBusy(form, async () => {
    await api('/mfa/totp/disable', { method: 'POST', body: { password: data.get('password'), code: String(data.get('code')).trim() } });
    form.reset();
    say('Two-factor authentication is off.');
    renderMfa(false);
  });
}

// --- Start -----------------------------------------------------------------------

$('#tab-login').addEventListener('click', () => showTab('login'));
$('#tab-register').addEventListener('click', () => showTab('register'));
$('#login-form').addEventListener('submit', onLogin);
$('#register-form').addEventListener('submit', onRegister);
$('#register-form').elements.password.addEventListener('input', onPasswordInput);
$('#logout').addEventListener('click', () => void onLogout());
$('#upload-form').addEventListener('submit', onUpload);
$('#settings').addEventListener('toggle', () => {
  if ($('#settings').open && state.accessToken && !state.settingsLoaded) void loadSettings();
});
$('#key-form').addEventListener('submit', onCreateKey);
$('#mfa-start').addEventListener('click', () => void onMfaStart());
$('#mfa-enable').addEventListener('submit', onMfaEnable);
$('#mfa-disable').addEventListener('submit', onMfaDisable);
$('#passkey-login').addEventListener('click', (event) => void onPasskeyLogin(event));
$('#mfa-passkey').addEventListener('click', (event) => void onMfaPasskey(event));
$('#passkey-form').addEventListener('submit', onPasskeyAdd);
$('#show-forgot').addEventListener('click', () => showEmailForm('forgot', $('#login-form').elements.username.value.includes('@') ? $('#login-form').elements.username.value : ''));
$('#show-code').addEventListener('click', () => showEmailForm('code'));
$('#email-form').addEventListener('submit', onEmailForm);
$('#code-form').addEventListener('submit', onCodeForm);
$('#reset-form').addEventListener('submit', onResetForm);
$('#resend-verification').addEventListener('click', (event) => void onResendVerification(event));
// A browser without WebAuthn is offered no passkey buttons at all.
if (!passkeysSupported()) for (const element of document.querySelectorAll('.passkey-only')) element.hidden = true;

if (await refresh()) await signedIn();
await followEmailLink();
