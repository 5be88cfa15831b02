// One request to a running service over HTTP, as a client of a deployed one would send it (the black-box suites).
export interface Answer {
  status: number;
  /** The JSON body, or `{ text }` when it is not JSON. */
  body: Record<string, unknown>;
  /** nginx's X-Upstream: the instance that answered. */
  upstream: string;
  retryAfter: string | null;
}

export async function callService(
  base: string,
  method: string,
  route: string,
  options: { token?: string; body?: unknown; form?: FormData } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (options.token) headers.Authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`${base}${route}`, {
    method,
    headers,
    body: options.form ?? (options.body === undefined ? undefined : JSON.stringify(options.body)),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { text };
  }
  return { status: res.status, body, upstream: res.headers.get('x-upstream') ?? '', retryAfter: res.headers.get('retry-after') };
}
