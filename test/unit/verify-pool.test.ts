import { createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { ED25519_BACKEND, type Ed25519PublicKey } from '../../src/domain/ed25519';
import { createVerifyPool, inlineVerifier } from '../../src/ingest/verify-pool';

function keyPair(): { pub: Ed25519PublicKey; signer: (data: Buffer) => Buffer } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const x = (publicKey.export({ format: 'jwk' }) as { x: string }).x;
  return {
    pub: { raw: Buffer.from(x, 'base64url'), key: createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' }) },
    signer: (data) => sign(null, data, privateKey),
  };
}

describe('verification pool (worker threads)', () => {
  const a = keyPair();
  const b = keyPair();

  it('runs on worker threads where libsodium is present, on the event loop with 0 threads', async () => {
    const pool = createVerifyPool(2);
    try {
      expect(pool.threads).toBe(ED25519_BACKEND === 'libsodium' ? 2 : 0);
      expect(createVerifyPool(0)).toBe(inlineVerifier);
    } finally {
      await pool.close();
    }
  });

  it('answers each of many concurrent jobs exactly as verification on the event loop does', async () => {
    const pool = createVerifyPool(2);
    try {
      const jobs = Array.from({ length: 500 }, (_, i) => {
        const data = Buffer.from(`signed input ${i} ${'x'.repeat(i * 7)}`);
        const key = i % 3 === 0 ? b : a;
        let sig = a.signer(data);
        if (i % 5 === 1) sig = Buffer.from(sig.map((c, j) => (j === 10 ? c ^ 1 : c)));
        if (i % 11 === 2) sig = sig.subarray(0, 63);
        return { data, key: key.pub, sig };
      });
      const expected = await Promise.all(jobs.map((j) => inlineVerifier.verify(j.data, j.key, j.sig)));
      // In one turn (one message per thread) and spread over many turns.
      const together = await Promise.all(jobs.map((j) => pool.verify(j.data, j.key, j.sig)));
      const apart: boolean[] = [];
      for (const j of jobs.slice(0, 60)) apart.push(await pool.verify(j.data, j.key, j.sig));
      expect(together).toEqual(expected);
      expect(apart).toEqual(expected.slice(0, 60));
      expect(expected.filter(Boolean).length).toBeGreaterThan(200);
      expect(expected.some((ok) => !ok)).toBe(true);
    } finally {
      await pool.close();
    }
  });

  it('answers jobs still in flight before close() returns', async () => {
    const pool = createVerifyPool(1);
    const data = Buffer.from('in flight at close');
    const pending = Array.from({ length: 50 }, () => pool.verify(data, a.pub, a.signer(data)));
    await pool.close();
    await expect(Promise.all(pending)).resolves.toEqual(Array(50).fill(true));
    // After close, still answered (on the event loop).
    await expect(pool.verify(data, a.pub, a.signer(data))).resolves.toBe(true);
    await expect(pool.verify(data, b.pub, a.signer(data))).resolves.toBe(false);
  });

  // Threads run only with libsodium; without it there is no thread to lose.
  (ED25519_BACKEND === 'libsodium' ? it : it.skip)('verifies on the event loop what a thread that dies was given, replaces the thread and says so', async () => {
    const warnings: string[] = [];
    // A thread that exits on its first batch, every time.
    const dies = "require('node:worker_threads').parentPort.on('message', () => process.exit(3));";
    const pool = createVerifyPool(1, { warn: (_o, msg) => void warnings.push(msg) }, dies);
    try {
      const data = Buffer.from('given to a dying thread');
      const good = a.signer(data);
      for (let round = 0; round < 3; round++) {
        await expect(Promise.all([pool.verify(data, a.pub, good), pool.verify(data, b.pub, good)])).resolves.toEqual([true, false]);
      }
      expect(warnings.length).toBeGreaterThanOrEqual(3);
      expect(warnings[0]).toMatch(/verification thread exited; its jobs verified on the event loop, thread replaced/);
    } finally {
      await pool.close();
    }
  });
});
