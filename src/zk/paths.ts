// znode paths: ZooKeeper's PathUtils.validatePath rules (docs/zookeeper.md
// §2.2) and the small helpers the tree needs. Strings are compared as UTF-16 code units,
// exactly as Java's chars are, so the character ranges below mean what they mean there.

import { assert } from '../stdx/assert.js';

/**
 * Why `path` is not a valid znode path, or undefined if it is. `sequential`: the path is the
 * prefix of a sequential create, to which the server appends a ten-digit counter; Java
 * validates `path + "1"`, which is why "/a/" is legal only then.
 */
export function validatePath(path: string, sequential: boolean): string | undefined {
  const full = sequential ? `${path}1` : path;
  if (full.length === 0) return 'the path is empty';
  if (full.charCodeAt(0) !== 0x2f) return 'the path must start with /';
  if (full.length === 1) return undefined;
  if (full.charCodeAt(full.length - 1) === 0x2f) return 'the path must not end with /';
  let last = 0x2f;
  for (let i = 1; i < full.length; last = full.charCodeAt(i), i++) {
    const c = full.charCodeAt(i);
    const segmentEnds = i + 1 === full.length || full.charCodeAt(i + 1) === 0x2f;
    if (c === 0) return `null character at ${i}`;
    if (c === 0x2f && last === 0x2f) return `empty node name at ${i}`;
    if (c === 0x2e && last === 0x2e) {
      if (full.charCodeAt(i - 2) === 0x2f && segmentEnds) return `relative path (..) at ${i}`;
    } else if (c === 0x2e) {
      if (last === 0x2f && segmentEnds) return `relative path (.) at ${i}`;
    } else if (invalidCharacter(c)) {
      return `invalid character U+${c.toString(16).padStart(4, '0').toUpperCase()} at ${i}`;
    }
  }
  return undefined;
}

/**
 * Control characters, the C1 range, surrogates and the private use area (so no astral
 * characters at all), and the specials block: Java's PathUtils refuses exactly these.
 */
function invalidCharacter(c: number): boolean {
  return (c > 0 && c <= 0x1f) || (c >= 0x7f && c <= 0x9f) || (c >= 0xd800 && c <= 0xf8ff) || c >= 0xfff0;
}

/**
 * The parent of a path: everything before its last '/', or '/' for a child of the root.
 * Works on a sequential prefix too ("/a/" → "/a"), since the suffix adds no '/'. The root
 * is its own parent, which makes `create /` answer NODEEXISTS as ZooKeeper does.
 */
export function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  assert(slash >= 0, `a znode path contains '/': ${JSON.stringify(path)}`);
  return slash === 0 ? '/' : path.slice(0, slash);
}

/** The last segment of a path: the child's name in its parent. '' for the root. */
export function baseName(path: string): string {
  const slash = path.lastIndexOf('/');
  assert(slash >= 0, `a znode path contains '/': ${JSON.stringify(path)}`);
  return path.slice(slash + 1);
}

/**
 * A sequential node's suffix: Java's String.format("%010d", counter) of a signed 32-bit
 * counter. The sign counts toward the width, so -5 is "-000000005" and -2^31 is
 * "-2147483648" (eleven characters, the width is a minimum).
 */
export function sequenceSuffix(counter: number): string {
  assert(Number.isInteger(counter) && counter >= -0x80000000 && counter <= 0x7fffffff, `the counter is a signed 32-bit integer: ${counter}`);
  if (counter >= 0) return String(counter).padStart(10, '0');
  return `-${String(-counter).padStart(9, '0')}`;
}
