/**
 * CRC-64 with the ISO polynomial, as Go's `hash/crc64` computes it with `crc64.MakeTable(crc64.ISO)`:
 * tar-split records one per file, so a reassembled layer can name the file that changed rather than
 * only fail the layer's sha256 at the end.
 *
 * The 64-bit state is two unsigned 32-bit halves (BigInt would be far slower per byte), and bytes are
 * taken eight at a time through eight tables ("slicing by 8"), which keeps this off the critical path
 * next to sha256 and gzip.
 */

// The ISO polynomial, bit-reversed: 0xD800000000000000 (its low half is zero).
const POLY_HIGH = 0xd8000000;
// Table k (k = 0…7) at [k * 256 + i]: the CRC of byte i followed by k zero bytes.
const HIGH = new Uint32Array(8 * 256);
const LOW = new Uint32Array(8 * 256);

for (let i = 0; i < 256; i++) {
  let high = 0;
  let low = i;
  for (let bit = 0; bit < 8; bit++) {
    const carry = low & 1;
    low = ((low >>> 1) | ((high & 1) << 31)) >>> 0;
    high >>>= 1;
    if (carry) high = (high ^ POLY_HIGH) >>> 0;
  }
  HIGH[i] = high;
  LOW[i] = low;
}
for (let k = 1; k < 8; k++) {
  for (let i = 0; i < 256; i++) {
    const high = HIGH[(k - 1) * 256 + i]!;
    const low = LOW[(k - 1) * 256 + i]!;
    const index = low & 0xff;
    LOW[k * 256 + i] = (((low >>> 8) | (high << 24)) ^ LOW[index]!) >>> 0;
    HIGH[k * 256 + i] = ((high >>> 8) ^ HIGH[index]!) >>> 0;
  }
}

/** A running CRC-64/ISO; `digest()` gives the 8 big-endian bytes tar-split stores (base64) as a file's payload. */
export class Crc64 {
  // Kept inverted between updates, as Go inverts at the start and end of each update.
  #high = 0xffffffff;
  #low = 0xffffffff;

  update(bytes: Uint8Array): this {
    let high = this.#high;
    let low = this.#low;
    let i = 0;
    for (const end = bytes.length - 7; i < end; i += 8) {
      // Signed 32-bit arithmetic is fine here: only bit patterns matter, and indexes are masked.
      const a = low ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
      const b = high ^ (bytes[i + 4]! | (bytes[i + 5]! << 8) | (bytes[i + 6]! << 16) | (bytes[i + 7]! << 24));
      const t7 = 7 * 256 + (a & 0xff);
      const t6 = 6 * 256 + ((a >>> 8) & 0xff);
      const t5 = 5 * 256 + ((a >>> 16) & 0xff);
      const t4 = 4 * 256 + (a >>> 24);
      const t3 = 3 * 256 + (b & 0xff);
      const t2 = 2 * 256 + ((b >>> 8) & 0xff);
      const t1 = 256 + ((b >>> 16) & 0xff);
      const t0 = b >>> 24;
      low = LOW[t7]! ^ LOW[t6]! ^ LOW[t5]! ^ LOW[t4]! ^ LOW[t3]! ^ LOW[t2]! ^ LOW[t1]! ^ LOW[t0]!;
      high = HIGH[t7]! ^ HIGH[t6]! ^ HIGH[t5]! ^ HIGH[t4]! ^ HIGH[t3]! ^ HIGH[t2]! ^ HIGH[t1]! ^ HIGH[t0]!;
    }
    for (; i < bytes.length; i++) {
      const index = (low ^ bytes[i]!) & 0xff;
      low = ((low >>> 8) | (high << 24)) ^ LOW[index]!;
      high = (high >>> 8) ^ HIGH[index]!;
    }
    this.#high = high;
    this.#low = low;
    return this;
  }

  digest(): Buffer {
    const out = Buffer.alloc(8);
    out.writeUInt32BE(~this.#high >>> 0, 0);
    out.writeUInt32BE(~this.#low >>> 0, 4);
    return out;
  }
}
