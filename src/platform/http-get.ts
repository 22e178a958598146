// HTTP with a deadline, for command-line tools and members that talk to admin ports
// (`flotilla debug leader` reads /status, `flotilla member` posts /members, `flotilla
// snapshot save` reads /backup).

export class HttpGetError extends Error {
  override name = 'HttpGetError';
}

/**
 * fetch() with a deadline; a failure to get any answer becomes an HttpGetError naming the
 * cause (connection refused, a timeout, a port fetch refuses), not fetch's bare "fetch failed".
 */
async function fetchWithin(url: string, init: RequestInit, timeoutMs: number): Promise<Response> {
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

/** GETs `url` and parses its JSON body; rejects with HttpGetError naming the cause (ECONNREFUSED, a timeout, an HTTP status). */
export async function getJson(url: string, timeoutMs: number): Promise<unknown> {
  const response = await fetchWithin(url, {}, timeoutMs);
  if (!response.ok) throw new HttpGetError(`HTTP ${response.status}`);
  try {
    return await response.json();
  } catch (error) {
    throw new HttpGetError(`not JSON: ${(error as Error).message}`);
  }
}

/** GETs `url` and returns its status and body bytes, whatever the status (a refusal explains itself in the body). */
export async function getBytes(url: string, timeoutMs: number): Promise<{ status: number; bytes: Uint8Array }> {
  const response = await fetchWithin(url, {}, timeoutMs);
  return { status: response.status, bytes: new Uint8Array(await response.arrayBuffer()) };
}

/**
 * POSTs `body` as JSON and returns the JSON answer. An answer with an error status is
 * returned too, as `{ error, status }`, so a caller can relay another member's refusal.
 */
export async function postJson(url: string, body: unknown, timeoutMs: number): Promise<object> {
  const response = await fetchWithin(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }, timeoutMs);
  let answer: unknown;
  try {
    answer = await response.json();
  } catch (error) {
    throw new HttpGetError(`HTTP ${response.status}, not JSON: ${(error as Error).message}`);
  }
  if (typeof answer !== 'object' || answer === null) throw new HttpGetError(`HTTP ${response.status}: not a JSON object`);
  return response.ok ? answer : { ...answer, status: response.status };
}
