// The browser page's entry: wires every screen, then resumes the browser's session and follows an emailed link.
import { resumeSession } from './api.js';
import { announceSignedIn } from './state.js';
import { wireAdmin } from './screens/admin.js';
import { wireLogin } from './screens/auth.js';
import { wireEmailForms } from './screens/email-forms.js';
import { followEmailLink, wireEmailLinks } from './screens/email-links.js';
import { wireImages } from './screens/images.js';
import { takeInvitation, wireInvitations } from './screens/invitation-link.js';
import { takeOAuthRequest, wireOAuth } from './screens/oauth.js';
import { wireOrgScreen } from './screens/org-screen.js';
import { wireOrganizations } from './screens/organizations.js';
import { followProviderReturn, takeProviderReturn, wireProviders } from './screens/providers.js';
import { wireRegister } from './screens/register.js';
import { wireSettings } from './screens/settings.js';
import { wireShell } from './screens/shell.js';
import { wireSignIn } from './screens/sign-in.js';
import { clearResultsOnInput } from './ui.js';
import { passkeysSupported } from './webauthn.js';

// A provider's answer leaves the address bar before anything else happens (a code is single use).
const providerReturn = takeProviderReturn();
// So does an app's sign-in request (we are its OpenID provider); this tab keeps it until it is answered.
const oauthRequest = takeOAuthRequest();
// And an emailed invitation: this tab keeps it until it is accepted, after a sign-in if need be.
takeInvitation();

// The order here is the order screens hear of a sign-in: the frame first, the gallery (which is awaited) last.
wireShell();
wireSignIn();
wireLogin();
wireRegister();
wireEmailForms();
wireEmailLinks();
wireSettings();
// The organizations read their list; an invitation from a link is accepted (then the list read again); the gallery.
wireOrganizations();
wireOrgScreen();
wireInvitations();
wireImages();
// The administrators' console follows the access token's roles.
wireAdmin();
clearResultsOnInput();
// A browser without WebAuthn is offered no passkey buttons at all.
if (!passkeysSupported()) for (const element of document.querySelectorAll('.passkey-only')) /** @type {HTMLElement} */ (element).hidden = true;

await wireProviders();
await wireOAuth(oauthRequest);

// The session this browser keeps (every tab of the page shares it), refreshed first if it is about to expire.
if (await resumeSession()) await announceSignedIn();
await followEmailLink();
await followProviderReturn(providerReturn);
