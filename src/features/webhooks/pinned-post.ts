// POSTs a webhook to the one address the destination policy checked, whatever DNS answers by the time it connects.
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import type { CheckedDestination } from './destination-policy.js';

/** A `lookup` for http(s).request that answers the checked address for any name, so a changed DNS answer cannot move the connection. */
export function pinnedLookup(address: string, family: 4 | 6): LookupFunction {
  return (_hostname, options, callback) => {
    if (options.all) callback(null, [{ address, family }]);
    else callback(null, address, family);
  };
}

/**
 * Sends `body` and answers the response's status without reading its body or following a redirect. The URL's host
 * still names the receiver (Host header, TLS server name and certificate check); only the connection is pinned.
 */
export function postPinned(destination: CheckedDestination, headers: Record<string, string>, body: string, signal: AbortSignal): Promise<number> {
  const client = destination.url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const request = client.request(
      destination.url,
      {
        method: 'POST',
        headers: { ...headers, 'Content-Length': String(Buffer.byteLength(body)) },
        lookup: pinnedLookup(destination.address, destination.family),
        // A pooled socket is keyed by host name, not address: it may have been opened to another address.
        agent: false,
        signal,
      },
      (response) => {
        resolve(response.statusCode ?? 0);
        response.destroy();
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}
