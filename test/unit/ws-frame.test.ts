import * as ws from 'ws';
import { wsTextFrame } from '../../src/ws/frames';

// ws exports its Sender at runtime; @types/ws does not declare it.
type SenderLike = { send(data: string, opts: { binary: boolean; compress: boolean; fin: boolean; mask: boolean }): void };
const { Sender } = ws as unknown as { Sender: new (socket: unknown) => SenderLike };

/** The bytes ws's own Sender writes for a server text frame (unmasked, no compression). */
function wsSends(payload: string): Buffer {
  const written: Buffer[] = [];
  const socket = {
    cork: () => undefined,
    uncork: () => undefined,
    write: (chunk: Buffer | string) => {
      written.push(Buffer.from(chunk));
      return true;
    },
  };
  const sender = new Sender(socket);
  sender.send(payload, { binary: false, compress: false, fin: true, mask: false });
  return Buffer.concat(written);
}

describe('wsTextFrame', () => {
  // One length per header form: 7-bit (< 126), 16-bit (< 65536), 64-bit (>= 65536), and each edge.
  test.each([0, 1, 125, 126, 1500, 65535, 65536, 200_000])('a %i-byte payload is framed exactly as ws frames it', (n) => {
    const payload = 'a'.repeat(n);
    expect(wsTextFrame(payload).equals(wsSends(payload))).toBe(true);
  });

  test('the length counts UTF-8 bytes, not characters', () => {
    const payload = `{"headline":"${'Сель ⚠ 🌊'.repeat(20)}"}`;
    const frame = wsTextFrame(payload);
    expect(frame.equals(wsSends(payload))).toBe(true);
    expect(frame.subarray(4).toString('utf8')).toBe(payload);
  });

  test('a Buffer payload gives the same bytes as its text', () => {
    const payload = '{"type":"alert","seq":1}';
    expect(wsTextFrame(Buffer.from(payload)).equals(wsTextFrame(payload))).toBe(true);
  });
});
