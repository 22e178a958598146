// A JSON GET with a deadline, for command-line tools that read members' admin ports
// (`flotilla debug leader` reads /status).

export class HttpGetError extends Error {
  override name = 'HttpGetError';
}

/** GETs `url` and parses its JSON body; rejects with HttpGetError naming the cause (ECONNREFUSED, a timeout, an HTTP status). */
export async function getJson(url: string, timeoutMs: number): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
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
  if (!response.ok) throw new HttpGetError(`HTTP ${response.status}`);
  try {
    return await response.json();
  } catch (error) {
    throw new HttpGetError(`not JSON: ${(error as Error).message}`);
  }
}

/**
 * POSTs `body` as JSON and returns the JSON answer. An answer with an error status is
 * returned too, as `{ error, status }`, so a caller can relay another member's refusal.
 */
export async function postJson(url: string, body: unknown, timeoutMs: number): Promise<object> {
  let response: Response;
  try {
    response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    const cause = (error as { cause?: { code?: unknown } }).cause;
    throw new HttpGetError(typeof cause?.code === 'string' ? cause.code : (error as Error).message);
  }
  let answer: unknown;
  try {
    answer = await response.json();
  } catch (error) {
    throw new HttpGetError(`HTTP ${response.status}, not JSON: ${(error as Error).message}`);
  }
  if (typeof answer !== 'object' || answer === null) throw new HttpGetError(`HTTP ${response.status}: not a JSON object`);
  return response.ok ? answer : { ...answer, status: response.status };
}
