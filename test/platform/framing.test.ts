import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFrame, FrameDecoder, FrameError } from '../../src/platform/framing.js';

test('frames survive arbitrary chunking', () => {
  const bodies = [Buffer.from('hello'), Buffer.alloc(0), Buffer.alloc(10000, 7), Buffer.from('x')];
  const stream = Buffer.concat(bodies.map(encodeFrame));
  for (const chunkSize of [1, 3, 4, 5, 17, 4096, stream.length]) {
    const decoder = new FrameDecoder(1 << 20);
    const out: Buffer[] = [];
    for (let offset = 0; offset < stream.length; offset += chunkSize) {
      out.push(...decoder.push(stream.subarray(offset, offset + chunkSize)));
    }
    assert.deepEqual(out, bodies, `chunk size ${chunkSize}`);
    assert.equal(decoder.bufferedBytes(), 0);
  }
});

test('an oversized frame is refused before its body arrives', () => {
  const decoder = new FrameDecoder(100);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(101, 0);
  assert.throws(() => decoder.push(header), FrameError);
});
