// Length-prefixed frames over a byte stream (TCP): a 4-byte big-endian length, then the
// body. Every frame is built in one buffer (one write per frame, so Nagle never splits a
// header from its body), and every frame has a size limit: a peer announcing a larger
// frame gets a FrameError and the caller closes that connection.

export const FRAME_HEADER_BYTES = 4;

export class FrameError extends Error {
  override name = 'FrameError';
}

/** One buffer holding the 4-byte length and the body. */
export function encodeFrame(body: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
  frame.writeUInt32BE(body.length, 0);
  frame.set(body, FRAME_HEADER_BYTES);
  return frame;
}

/**
 * Reassembles frames from arbitrary chunks. Chunks are kept in a list with a byte count
 * (never concatenated one by one, which is quadratic on large frames). Each returned body
 * is a fresh copy, safe to retain.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(readonly frameBytesMax: number) {}

  /** Adds a chunk and returns every frame body it completed. Throws FrameError. */
  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Buffer[] = [];
    for (;;) {
      if (this.buffered < FRAME_HEADER_BYTES) break;
      const length = this.peekLength();
      if (length > this.frameBytesMax) {
        throw new FrameError(`frame of ${length} bytes exceeds the limit of ${this.frameBytesMax} bytes`);
      }
      if (this.buffered < FRAME_HEADER_BYTES + length) break;
      const whole = this.take(FRAME_HEADER_BYTES + length);
      frames.push(Buffer.from(whole.subarray(FRAME_HEADER_BYTES)));
    }
    return frames;
  }

  /** The bytes buffered so far (not consumed). */
  peek(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** Bytes received but not yet part of a complete frame. */
  bufferedBytes(): number {
    return this.buffered;
  }

  private peekLength(): number {
    const first = this.chunks[0]!;
    if (first.length >= FRAME_HEADER_BYTES) return first.readUInt32BE(0);
    this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!.readUInt32BE(0);
  }

  private take(length: number): Buffer {
    let first = this.chunks[0]!;
    if (first.length < length) {
      this.chunks = [Buffer.concat(this.chunks)];
      first = this.chunks[0]!;
    }
    const taken = first.subarray(0, length);
    if (first.length === length) this.chunks.shift();
    else this.chunks[0] = first.subarray(length);
    this.buffered -= length;
    return taken;
  }
}
