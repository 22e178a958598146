// Whole-file reads and writes for the command-line tools (a history to check, an HTML report
// to write, a value to store). Services do their I/O through io.Disk instead; this is only
// for the CLI edge.

import { closeSync, fsyncSync, openSync, readFileSync, renameSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { InputTooLargeError } from './process.js';

/** Reads a UTF-8 text file; throws the fs error (ENOENT, EACCES) for the caller to report. */
export function readTextFile(path: string): string {
  return readFileSync(path, 'utf8');
}

/**
 * Reads a whole file of at most `bytesMax` bytes; a larger one is refused with
 * InputTooLargeError before it is read. Throws the fs error (ENOENT, EACCES, EISDIR).
 */
export function readBytesFile(path: string, bytesMax: number): Buffer {
  const size = statSync(path).size;
  if (size > bytesMax) throw new InputTooLargeError(`${path} has ${size} bytes, more than ${bytesMax}`);
  const bytes = readFileSync(path);
  // It may have grown between the stat and the read.
  if (bytes.length > bytesMax) throw new InputTooLargeError(`${path} has ${bytes.length} bytes, more than ${bytesMax}`);
  return bytes;
}

/** Writes (replaces) a UTF-8 text file. */
export function writeTextFile(path: string, text: string): void {
  writeFileSync(path, text, 'utf8');
}

/**
 * Writes a file so that a crash leaves either the old one or the whole new one: a temporary
 * file beside it, fsynced, renamed over it, and the directory fsynced.
 */
export function writeFileDurably(path: string, bytes: Uint8Array): void {
  const temporary = `${path}.tmp-${process.pid}`;
  const fd = openSync(temporary, 'w', 0o600);
  try {
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
  const directory = openSync(dirname(path), 'r');
  try {
    fsyncSync(directory);
  } finally {
    closeSync(directory);
  }
}
