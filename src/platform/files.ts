// Whole-file reads and writes for the command-line tools (a history to check, an HTML report
// to write). Services do their I/O through io.Disk instead; this is only for the CLI edge.

import { readFileSync, writeFileSync } from 'node:fs';

/** Reads a UTF-8 text file; throws the fs error (ENOENT, EACCES) for the caller to report. */
export function readTextFile(path: string): string {
  return readFileSync(path, 'utf8');
}

/** Writes (replaces) a UTF-8 text file. */
export function writeTextFile(path: string, text: string): void {
  writeFileSync(path, text, 'utf8');
}
