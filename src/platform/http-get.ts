// HTTP with a deadline, for command-line tools and members that talk to admin ports
// (`flotilla debug leader` reads /status, `flotilla member` posts /members, `flotilla
// snapshot save` reads /backup). An https URL needs `tls` (the CA, and a client
// certificate when the member requires one): fetch() cannot be given a CA, so those go
// through node:https.

import { request as httpsRequest } from 'node:https';
import { type ClientTls, clientConnectOptions, describeTlsError, isTlsError } from './tls.js';

export class HttpGetError extends Error {
  override name = 'HttpGetError';
}

/**
 * fetch() with a deadline; a failure to get any answer becomes an HttpGetError naming the
 * cause (connection refused, a timeout, a port fetch refuses), not fetch's bare "fetch failed".
 */
async function fetchWithin(url: string, init: RequestInit, timeoutMs: number, tls?: ClientTls): Promise<Response> {
  if (url.startsWith('https:')) {
    if (tls === undefined) throw new HttpGetError(`${url}: https needs --cacert (the CA that signed the member certificates)`);
    return httpsWithin(url, init, timeoutMs, tls);
  }
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
    const reason =
      typeof cause?.code === 'string'
        ? cause.code
        : (error as Error).name === 'TimeoutError'
          ? `no answer within ${timeoutMs} ms`
          : typeof cause?.message === 'string'
            ? cause.message // "bad port": fetch refuses some ports outright
            : (error as Error).message;
    throw new HttpGetError(reason === 'ECONNREFUSED' ? 'connection refused' : reason);
  }
}

/** One https request with the given CA and client certificate, answered as a fetch Response. */
function httpsWithin(url: string, init: RequestInit, timeoutMs: number, tls: ClientTls): Promise<Response> {
  const parsed = new URL(url);
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve, reject) => {
    const headers = (init.headers ?? {}) as Record<string, string>;
    const request = httpsRequest(
      { ...clientConnectOptions(tls, host), host, port: parsed.port, path: `${parsed.pathname}${parsed.search}`, method: init.method ?? 'GET', headers, agent: false, timeout: timeoutMs },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', (error) => reject(new HttpGetError(error.message)));
        response.on('end', () => {
          clearTimeout(timer);
          resolve(new Response(Buffer.concat(chunks), { status: response.statusCode ?? 500 }));
        });
      },
    );
    const timer = setTimeout(() => request.destroy(new HttpGetError(`no answer within ${timeoutMs} ms`)), timeoutMs);
    request.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (error instanceof HttpGetError) reject(error);
      else if (isTlsError(error)) reject(new HttpGetError(`the TLS handshake failed: ${describeTlsError(error)}`));
      else reject(new HttpGetError(error.code === 'ECONNREFUSED' ? 'connection refused' : (error.code ?? error.message)));
    });
    request.end(typeof init.body === 'string' ? init.body : undefined);
  });
}

/** GETs `url` and parses its JSON body; rejects with HttpGetError naming the cause (ECONNREFUSED, a timeout, an HTTP status). */
export async function getJson(url: string, timeoutMs: number, tls?: ClientTls): Promise<unknown> {
  const response = await fetchWithin(url, {}, timeoutMs, tls);
  if (!response.ok) throw new HttpGetError(`HTTP ${response.status}`);
  try {
    return await response.json();
  } catch (error) {
    throw new HttpGetError(`not JSON: ${(error as Error).message}`);
  }
}

/** GETs `url` and returns its status and body bytes, whatever the status (a refusal explains itself in the body). */
export async function getBytes(url: string, timeoutMs: number, tls?: ClientTls): Promise<{ status: number; bytes: Uint8Array }> {
  const response = await fetchWithin(url, {}, timeoutMs, tls);
  return { status: response.status, bytes: new Uint8Array(await response.arrayBuffer()) };
}

/**
 * POSTs `body` as JSON and returns the JSON answer. An answer with an error status is
 * returned too, as `{ error, status }`, so a caller can relay another member's refusal.
 */
export async function postJson(url: string, body: unknown, timeoutMs: number, tls?: ClientTls): Promise<object> {
  const response = await fetchWithin(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }, timeoutMs, tls);
  let answer: unknown;
  try {
    answer = await response.json();
  } catch (error) {
    throw new HttpGetError(`HTTP ${response.status}, not JSON: ${(error as Error).message}`);
  }
  if (typeof answer !== 'object' || answer === null) throw new HttpGetError(`HTTP ${response.status}: not a JSON object`);
  return response.ok ? answer : { ...answer, status: response.status };
}
