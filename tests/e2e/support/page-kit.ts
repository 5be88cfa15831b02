// One person's tab on the page: what its console said, each screen checked at a desktop's and a phone's width
// (screenshots kept for a human to look at), and the emails the server wrote to its outbox for that person.
import { mkdirSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Browser, BrowserContext, Dialog, Page, Request } from 'playwright-core';
import { expect } from 'vitest';

/** A desktop and a phone (an iPhone 12–15's CSS width). */
export const WIDTHS = [1280, 390] as const;
export const SHOTS = process.env.E2E_SHOTS ?? '/tmp/page-shots';
mkdirSync(SHOTS, { recursive: true });

export const PASSWORD = 'tulip canyon ember quartz';

/** axe-core's engine as one script, injected into the page under test (it is not part of the page). */
const AXE_SOURCE = (createRequire(import.meta.url)('axe-core') as { source: string }).source;
/** The WCAG 2.0, 2.1 and 2.2 success criteria at levels A and AA, as axe-core tags its rules. */
export const WCAG_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];
/** The rules whose verdict changes with the colour scheme (the rest read the markup and layout alone). */
const COLOUR_RULES = ['color-contrast', 'link-in-text-block'];

/** What axe-core reports of one rule broken, as far as the test reads it. */
interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: Array<{ target: unknown[]; failureSummary?: string }>;
}

/**
 * The page's breaches of WCAG 2.x A/AA as axe-core finds them now (or of the `rules` named only), one readable line
 * per element: rule, target, summary.
 */
export async function accessibilityViolations(page: Page, rules?: string[]): Promise<string[]> {
  if (!(await page.evaluate(() => 'axe' in globalThis))) await page.evaluate(AXE_SOURCE);
  const runOnly = rules ? { type: 'rule', values: rules } : { type: 'tag', values: WCAG_TAGS };
  const violations = await page.evaluate(async (only) => {
    const { axe } = globalThis as unknown as { axe: { run(context: unknown, options: unknown): Promise<{ violations: AxeViolation[] }> } };
    const results = await axe.run((globalThis as unknown as BrowserWindow).document, { runOnly: only, resultTypes: ['violations'] });
    return results.violations.map(({ id, impact, help, nodes }) => ({
      id,
      impact,
      help,
      nodes: nodes.map(({ target, failureSummary }) => ({ target, failureSummary })),
    }));
  }, runOnly);
  return violations.flatMap((rule) =>
    rule.nodes.map(
      (node) =>
        `${rule.id} (${rule.impact ?? 'no impact given'}): ${rule.help}\n    at ${node.target.map(String).join(' > ')}\n    ${(node.failureSummary ?? '').replace(/\n\s*/g, ' ')}`,
    ),
  );
}

/** The little of the browser's globals read inside page.evaluate (the test program is compiled without DOM types). */
interface BrowserWindow {
  innerWidth: number;
  document: {
    body: { innerText: string };
    scrollingElement: { scrollWidth: number } | null;
    querySelectorAll(selector: string): ArrayLike<{ value: string }>;
  };
  getComputedStyle(element: unknown): Record<string, string | undefined>;
}

export interface Rect {
  top: number;
  bottom: number;
  left: number;
  right: number;
  width: number;
  height: number;
}

interface Boxed {
  getBoundingClientRect(): Rect;
}

interface OutboxMessage {
  id: string;
  to: string;
  subject: string;
  text: string;
}

export interface Account {
  username: string;
  email: string;
  password: string;
}

let serial = 0;
/** A username no other test (or earlier run on the same data) has. */
export function uniqueName(prefix = 'e2e'): string {
  serial += 1;
  return `${prefix}_${process.pid.toString(36)}${serial}${Math.floor(Math.random() * 1e4).toString(36)}`;
}

export class Visit {
  /** Console errors, uncaught exceptions and CSP refusals since the last check. */
  readonly errors: string[] = [];
  /** Requests answered 404 (a missing favicon, a broken link): never expected. */
  readonly missing: string[] = [];
  /** Requests refused (4xx, 5xx) since the last check, as `status METHOD path`: what a console error was about. */
  readonly refusals: string[] = [];
  /** The page's own calls (fetch, XMLHttpRequest) the server has not answered yet. */
  private readonly pending = new Set<Request>();
  private readonly seenMail = new Set<string>();

  private constructor(
    readonly page: Page,
    readonly url: string,
    private readonly outbox: string,
  ) {
    page.on('console', (message) => {
      if (message.type() === 'error') this.errors.push(message.text());
    });
    page.on('pageerror', (error) => this.errors.push(`uncaught: ${error.message}`));
    page.on('request', (request) => {
      if (['fetch', 'xhr'].includes(request.resourceType())) this.pending.add(request);
    });
    page.on('requestfailed', (request) => this.pending.delete(request));
    page.on('response', (response) => {
      this.pending.delete(response.request());
      if (response.status() === 404) this.missing.push(response.url());
      if (response.status() >= 400) this.refusals.push(`${response.status()} ${response.request().method()} ${new URL(response.url()).pathname}`);
    });
  }

  /**
   * Opens the page in a fresh context (its own storage), at `width` px wide; `prepare` runs on the context before the
   * page first loads (to install a fake clock, say).
   */
  static async open(
    browser: Browser,
    server: { url: string; dataDir: string },
    width: number = WIDTHS[0],
    prepare?: (context: BrowserContext) => Promise<void>,
  ): Promise<Visit> {
    const context = await browser.newContext({ viewport: { width, height: width < 600 ? 844 : 900 } });
    await prepare?.(context);
    const visit = new Visit(await context.newPage(), server.url, path.join(server.dataDir, 'outbox'));
    await visit.page.goto(server.url);
    return visit;
  }

  /** Opens the page in another tab of the same browser (the same context: its storage, cookies and Web Locks). */
  async openTab(): Promise<Visit> {
    const tab = new Visit(await this.page.context().newPage(), this.url, this.outbox);
    await tab.page.goto(this.url);
    return tab;
  }

  /** Closes the browser context: every tab opened from this visit with it. */
  async close(): Promise<void> {
    await this.page.context().close();
  }

  /**
   * Checks the screen as it is now at both widths: nothing wider than the window (no sideways scrolling on a
   * phone), no breach of WCAG 2.x A/AA that axe-core finds (the colours in the dark scheme too), a full-page
   * screenshot of each in SHOTS, and a console with nothing in it but the refusals `allowed` names (a browser logs
   * every 4xx it receives, the ones the step provoked on purpose included).
   */
  async check(name: string, allowed: RegExp[] = []): Promise<void> {
    const original = this.page.viewportSize();
    for (const width of WIDTHS) {
      await this.page.setViewportSize({ width, height: width < 600 ? 844 : 900 });
      const { scrollWidth, innerWidth } = await this.page.evaluate(() => {
        const browser = globalThis as unknown as BrowserWindow;
        return { scrollWidth: browser.document.scrollingElement?.scrollWidth ?? Number.POSITIVE_INFINITY, innerWidth: browser.innerWidth };
      });
      expect(scrollWidth, `${name}: the page is wider than a ${width} px window`).toBeLessThanOrEqual(innerWidth);
      await this.page.screenshot({ path: path.join(SHOTS, `${name}-${width}.png`), fullPage: true });
      const violations = await accessibilityViolations(this.page);
      expect(violations, `${name}: axe-core finds WCAG 2.x A/AA violations at ${width} px:\n  ${violations.join('\n  ')}\n`).toEqual([]);
    }
    if (original) await this.page.setViewportSize(original);
    // A person whose system is dark gets the dark palette: its contrast is checked as well (at the width left).
    await this.page.emulateMedia({ colorScheme: 'dark' });
    const dark = await accessibilityViolations(this.page, COLOUR_RULES);
    await this.page.emulateMedia({ colorScheme: 'light' });
    expect(dark, `${name}: axe-core finds colour violations in the dark scheme:\n  ${dark.join('\n  ')}\n`).toEqual([]);
    this.expectQuietConsole(name, allowed);
  }

  /** Nothing in the console but the refusals `allowed` names, and no 404; then starts counting again. */
  expectQuietConsole(name: string, allowed: RegExp[] = []): void {
    const unexpected = this.errors.filter((text) => !allowed.some((pattern) => pattern.test(text)));
    expect(unexpected, `${name}: console errors (requests refused meanwhile: ${this.refusals.join(', ') || 'none'})`).toEqual([]);
    expect(this.missing, `${name}: requests answered 404`).toEqual([]);
    this.errors.length = 0;
    this.refusals.length = 0;
  }

  /** Waits until every call the page has made is answered (what signing in started to read, say). */
  async settled(): Promise<void> {
    await expect.poll(() => [...this.pending].map((request) => `${request.method()} ${request.url()}`), { message: 'requests still under way' }).toEqual([]);
  }

  /** The text of `selector` once it is on the page (empty when absent). */
  text(selector: string): Promise<string> {
    return this.page
      .locator(selector)
      .first()
      .textContent()
      .then((text) => text ?? '');
  }

  /** Whether the element is fully inside the window now (a result must be seen where the person is looking). */
  async inView(selector: string): Promise<boolean> {
    const box = await this.box(selector);
    const size = this.page.viewportSize() ?? { width: 0, height: 0 };
    // Scrolling lands on fractions of a pixel: one pixel of slack.
    return box.height > 0 && box.top >= -1 && box.bottom <= size.height + 1 && box.left >= -1 && box.right <= size.width + 1;
  }

  /** Where the (first) element is in the window now, in CSS pixels. */
  box(selector: string): Promise<Rect> {
    return this.page
      .locator(selector)
      .first()
      .evaluate((element) => {
        const { top, bottom, left, right, width, height } = (element as unknown as Boxed).getBoundingClientRect();
        return { top, bottom, left, right, width, height };
      });
  }

  /** A property of the (first) element, as the page sees it (an image's naturalWidth, a dialog's open). */
  prop(selector: string, name: string): Promise<unknown> {
    return this.page
      .locator(selector)
      .first()
      .evaluate((element, key) => (element as unknown as Record<string, unknown>)[key], name);
  }

  /** A computed style of the (first) element. */
  style(selector: string, name: string): Promise<string> {
    return this.page
      .locator(selector)
      .first()
      .evaluate((element, key) => (globalThis as unknown as BrowserWindow).getComputedStyle(element)[key] ?? '', name);
  }

  /** Everything a person could read on the page: its text and what its fields hold. */
  everythingShown(): Promise<string> {
    return this.page.evaluate(() => {
      const { document } = globalThis as unknown as BrowserWindow;
      return `${document.body.innerText}\n${Array.from(document.querySelectorAll('input'), (input) => input.value).join('\n')}`;
    });
  }

  /** Marks the document now shown, so a later `sameDocument` tells a fragment change from a reload. */
  async markDocument(): Promise<void> {
    await this.page.evaluate(() => Object.assign(globalThis, { e2eMark: true }));
  }

  sameDocument(): Promise<boolean> {
    return this.page.evaluate(() => 'e2eMark' in globalThis);
  }

  /**
   * The newest message to `to` whose subject matches and that this visit has not read yet, once the server has
   * written it (the outbox: one JSON file per message, named so that newer sorts later).
   */
  async mail(to: string, subject: RegExp): Promise<string> {
    const find = async () => {
      const names = (await readdir(this.outbox).catch(() => [] as string[]))
        .filter((name) => name.endsWith('.json'))
        .sort()
        .reverse();
      for (const name of names) {
        const message = JSON.parse(await readFile(path.join(this.outbox, name), 'utf8')) as OutboxMessage;
        if (message.to === to && subject.test(message.subject) && !this.seenMail.has(message.id)) return message;
      }
      return undefined;
    };
    await expect.poll(async () => (await find()) !== undefined, { timeout: 15_000, message: `a message to ${to} about ${String(subject)}` }).toBe(true);
    const message = (await find()) as OutboxMessage;
    this.seenMail.add(message.id);
    return message.text;
  }

  /** The link from the newest confirmation or reset message, as a path on this server (#verify-email=…). */
  async linkFrom(to: string, subject: RegExp): Promise<string> {
    const fragment = /#(?:verify-email|reset-password)=[A-Za-z0-9_-]+/.exec(await this.mail(to, subject))?.[0];
    expect(fragment, 'the message carries a link').toBeDefined();
    return `${this.url}/${fragment}`;
  }

  /** Answers the page's prompt for a second proof with the code the server emails (adding a first second factor). */
  answerSecondProofs(account: Account): void {
    this.page.on('dialog', (dialog: Dialog) => {
      if (!/emailed you/.test(dialog.message())) return;
      void this.mail(account.email, /confirmation code/).then((text) => dialog.accept(/^\s+(\d{6})\s*$/m.exec(text)?.[1] ?? ''));
    });
  }
}

/** Creates an account through the form, as a person would, and waits until the page greets them. */
export async function register(visit: Visit, account: Partial<Account> = {}): Promise<Account> {
  const username = account.username ?? uniqueName();
  const filled: Account = { username, email: account.email ?? `${username}@example.com`, password: account.password ?? PASSWORD };
  const { page } = visit;
  await page.getByRole('tab', { name: 'Create account' }).click();
  const form = page.locator('#register-form');
  await form.getByLabel('Username').fill(filled.username);
  await form.getByLabel('Email').fill(filled.email);
  await form.getByLabel('Password', { exact: true }).fill(filled.password);
  await form.getByRole('button', { name: 'Create account' }).click();
  await expect.poll(() => visit.text('#whoami')).toBe(`Signed in as ${filled.username}`);
  return filled;
}

/** Signs in with the password form (no second factor expected). */
export async function logIn(visit: Visit, account: Account): Promise<void> {
  const form = visit.page.locator('#login-form');
  await form.getByLabel('Username or email').fill(account.username);
  await form.getByLabel('Password', { exact: true }).fill(account.password);
  await form.getByRole('button', { name: 'Log in' }).click();
}

/**
 * Signs out with the button, once what the page was reading has answered: a read still under way when the server
 * ends the session is refused (401), and the browser logs that refusal as a console error.
 */
export async function logOut(visit: Visit): Promise<void> {
  await visit.settled();
  await visit.page.getByRole('button', { name: 'Log out' }).click();
  await expect.poll(() => visit.page.locator('#login-form').isVisible()).toBe(true);
}

/** Opens the confirmation link emailed at registration in this tab, and waits for the page to say it worked. */
export async function confirmAddress(visit: Visit, account: Account): Promise<void> {
  await visit.page.goto(await visit.linkFrom(account.email, /^Confirm your email/));
  await expect.poll(() => visit.text('#status')).toBe(`Thank you: ${account.email} is confirmed.`);
}

export async function openSettings(visit: Visit): Promise<void> {
  if ((await visit.page.locator('#settings').getAttribute('open')) === null) await visit.page.locator('#settings summary').click();
  await expect.poll(() => visit.text('#mfa-state')).toMatch(/^Two-factor authentication is (on|off)\.$/);
}

/** The browser's own report of a refused request, which a step provokes on purpose. */
export function refused(status: number): RegExp {
  return new RegExp(`status of ${status}\\b`);
}

/** What every screen group shares: one browser, and the servers started once for the whole run. */
export interface Kit {
  browser: Browser;
  /** Budgets roomy enough for a scripted visit. */
  server: { url: string; dataDir: string };
  /** The budgets a newcomer gets (5 a minute per group); started in the background, awaited by its one test. */
  newcomerServer: Promise<{ url: string; dataDir: string }>;
}
