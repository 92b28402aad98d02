import { generateKeyPairSync } from 'node:crypto';
import { arrayHashReader, checkRecord, leafHash, proveRecord, storedHashesForRecordHash, treeHash, type Hash } from '../../src/domain/tlog/merkle';
import { formatCheckpoint, formatVerifierKey, noteSigner, SIG_ED25519, signNote } from '../../src/domain/tlog/note';
import { checkInclusion, leafHash as browserLeafHash, openCheckpoint, parseVkey } from '../../console/src/tlog-check';

/**
 * The console's WebCrypto inclusion check and checkpoint verification (console/src/inlog.ts, run
 * here on Node's WebCrypto) give the same answers as src/domain/tlog, which is checked against
 * RFC 6962 vectors and Go's implementation.
 */

const u8 = (b: Buffer): Uint8Array => new Uint8Array(b);

describe('console inclusion check (WebCrypto) against src/domain/tlog', () => {
  test('every leaf of trees of 1..33 leaves proves; a changed proof, leaf, index or size does not, exactly as checkRecord says', async () => {
    const stored: Hash[] = [];
    const leaves: Hash[] = [];
    for (let n = 0; n < 33; n++) {
      const h = leafHash(`leaf ${n}`);
      expect(Buffer.from(await browserLeafHash(`leaf ${n}`))).toEqual(h);
      leaves.push(h);
      stored.push(...(await storedHashesForRecordHash(n, h, arrayHashReader(stored))));
    }
    const reader = arrayHashReader(stored);
    for (let size = 1; size <= 33; size++) {
      const root = await treeHash(size, reader);
      for (let i = 0; i < size; i++) {
        const proof = await proveRecord(size, i, reader);
        expect(await checkInclusion(proof.map(u8), size, u8(root), i, u8(leaves[i]))).toBe(true);
        const cases: Array<[Hash[], number, number, Hash]> = [
          [proof, size, (i + 1) % size, leaves[i]],
          [proof, size + 1, i, leaves[i]],
          [proof, size, i, leaves[(i + 1) % 33]],
          [proof.slice(0, -1), size, i, leaves[i]],
          [[...proof, leaves[0]], size, i, leaves[i]],
        ];
        if (proof.length > 0) {
          const flipped = proof.map((p) => Buffer.from(p));
          flipped[0][5] ^= 0x10;
          cases.push([flipped, size, i, leaves[i]]);
        }
        for (const [p, t, n, h] of cases) {
          expect(await checkInclusion(p.map(u8), t, u8(root), n, u8(h))).toBe(checkRecord(p, t, root, n, h));
        }
      }
    }
  });

  test('a checkpoint opens only with the log key that signed it, and not once altered', async () => {
    const signer = noteSigner('cordon.localhost', SIG_ED25519, generateKeyPairSync('ed25519').privateKey);
    const other = noteSigner('cordon.localhost', SIG_ED25519, generateKeyPairSync('ed25519').privateKey);
    const root = leafHash('root');
    const note = signNote(formatCheckpoint({ origin: 'cordon.localhost/KG-CN-01/abc', size: 9, root }), signer);
    const key = (await parseVkey(formatVerifierKey(signer)))!;
    expect(key).not.toBeNull();
    const cp = (await openCheckpoint(note, key))!;
    expect(cp.origin).toBe('cordon.localhost/KG-CN-01/abc');
    expect(cp.size).toBe(9);
    expect(Buffer.from(cp.root)).toEqual(root);
    expect(await openCheckpoint(note.replace('\n9\n', '\n10\n'), key)).toBeNull();
    expect(await openCheckpoint(note, (await parseVkey(formatVerifierKey(other)))!)).toBeNull();
    // A vkey whose key ID does not match its key is refused.
    const vk = formatVerifierKey(signer);
    expect(await parseVkey(vk.replace(/\+([0-9a-f]{8})\+/, (_m, id: string) => `+${id === '00000000' ? '00000001' : '00000000'}+`))).toBeNull();
  });
});
