// Key partitioning, as in the lab: ihash(key) = FNV-1a-32(UTF-8 bytes of key) & 0x7fffffff,
// and the reduce bucket is ihash(key) % nReduce. Keeping the lab's function means a key
// lands in the same mr-out-R file as it would with the Go implementation.

const FNV_OFFSET_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const utf8 = new TextEncoder();

export function ihash(key: string): number {
  let hash = FNV_OFFSET_BASIS;
  if (isAscii(key)) {
    for (let i = 0; i < key.length; i++) {
      hash = Math.imul(hash ^ key.charCodeAt(i), FNV_PRIME);
    }
  } else {
    for (const byte of utf8.encode(key)) hash = Math.imul(hash ^ byte, FNV_PRIME);
  }
  return (hash >>> 0) & 0x7fffffff;
}

export function partitionOf(key: string, reduceCount: number): number {
  return ihash(key) % reduceCount;
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}
