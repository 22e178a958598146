// Debian's chromium for the browser tests (playwright-core drives it).

import { existsSync } from 'node:fs';

export const CHROMIUM_PATH = '/usr/bin/chromium';
/** undefined if chromium is installed; on CI its absence is a failure, not a skip. */
export function chromiumSkipReason(): string | undefined {
  if (existsSync(CHROMIUM_PATH)) return undefined;
  const reason = `chromium not installed: need ${CHROMIUM_PATH} (apt-get install chromium)`;
  if (process.env['CI'] !== undefined && process.env['CI'] !== '') throw new Error(`${reason}; CI must install it, so this is a failure, not a skip`);
  return reason;
}
