// The messages this service sends, rendered from the plain-text and HTML files beside this module.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../../core/paths.js';

export const TEMPLATES_DIR = path.join(PROJECT_ROOT, 'src', 'features', 'email', 'templates');

export const TEMPLATE_NAMES = [
  'verify-email',
  'email-changed',
  'password-reset',
  'password-changed',
  'sign-in-code',
  'new-sign-in',
  'mfa-disabled',
  'api-key-created',
  'passkey-added',
  'identity-linked',
  'mfa-enabled',
  'address-in-use',
  'step-up-code',
  'org-invitation',
] as const;
export type TemplateName = (typeof TEMPLATE_NAMES)[number];

export interface RenderedMessage {
  subject: string;
  text: string;
  html: string;
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (value: string) => value.replace(/[&<>"']/g, (char) => HTML_ESCAPES[char] ?? char);

/** `raw` values go in as they are (already rendered HTML); every other value through `escape`. */
function fill(template: string, values: Record<string, string>, escape: (value: string) => string, raw: Record<string, string> = {}): string {
  return template.replace(/\{\{(\w+)\}\}/g, (_match, name: string) => {
    if (name in raw) return raw[name] ?? '';
    const value = values[name];
    if (value === undefined) throw new Error(`the template needs {{${name}}}`);
    return escape(value);
  });
}

/** Each template read once: `<name>.txt` (a `Subject:` line, a blank line, the body) and `<name>.html` (the body). */
export class MailTemplates {
  private readonly templates = new Map<TemplateName, { subject: string; text: string; html: string }>();
  private readonly layout: string;

  constructor(
    private readonly common: { product: string; baseUrl: string },
    dir = TEMPLATES_DIR,
  ) {
    this.layout = readFileSync(path.join(dir, 'layout.html'), 'utf8');
    for (const name of TEMPLATE_NAMES) {
      const [subjectLine, ...body] = readFileSync(path.join(dir, `${name}.txt`), 'utf8').split('\n');
      if (!subjectLine?.startsWith('Subject: ')) throw new Error(`${name}.txt must start with a Subject: line`);
      // The queue keeps subjects in clear (a week after sending, for support): no link, code or other value in one.
      if (/\{\{(?!product\}\})/.test(subjectLine)) throw new Error(`${name}.txt: a subject may name only {{product}}`);
      this.templates.set(name, {
        subject: subjectLine.slice('Subject: '.length),
        text: body.join('\n').trim(),
        html: readFileSync(path.join(dir, `${name}.html`), 'utf8'),
      });
    }
  }

  /** Values are inserted as text: escaped in the HTML, and kept to one line in the subject. */
  render(name: TemplateName, values: Record<string, string>): RenderedMessage {
    const template = this.templates.get(name);
    if (!template) throw new Error(`no template ${name}`);
    const all = { ...this.common, ...values };
    const subject = fill(template.subject, all, (value) => value.replace(/[\r\n]+/g, ' '));
    const content = fill(template.html, all, escapeHtml);
    return {
      subject,
      text: `${fill(template.text, all, (value) => value)}\n`,
      html: fill(this.layout, { ...all, subject }, escapeHtml, { content }),
    };
  }
}
