/** base64url without padding (RFC 4648 §5), as JOSE writes it. */

const B64U = /^[A-Za-z0-9_-]*$/;

export function b64uEncode(buf: Uint8Array | string): string {
  return (typeof buf === 'string' ? Buffer.from(buf, 'utf8') : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)).toString('base64url');
}

/**
 * Strict decode: only the base64url alphabet, no padding, and only the canonical encoding
 * (Node's decoder silently ignores junk and stray bits, which would let one signature travel
 * under many spellings).
 */
export function b64uDecode(s: string): Buffer {
  if (typeof s !== 'string' || !B64U.test(s) || s.length % 4 === 1) {
    throw new TypeError('not base64url');
  }
  const buf = Buffer.from(s, 'base64url');
  if (buf.toString('base64url') !== s) throw new TypeError('not canonical base64url');
  return buf;
}
