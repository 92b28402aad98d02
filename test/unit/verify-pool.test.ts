import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CordonError } from '../../src/errors';
import { ED25519_BACKEND } from '../../src/domain/ed25519';
import { verifySubmission, type SubmissionCheckResult } from '../../src/domain/signature';
import type { Submission } from '../../src/domain/types';
import { createVerifyPool, NO_POOL } from '../../src/ingest/verify-pool';
import { validContent } from '../fixtures/alerts';
import { makeTestTrust } from '../helpers/keys';

const trust = makeTestTrust();
const OPTS = { nowMs: Date.now(), maxAgeS: 86_400, maxSkewS: 300 };

/** What verifySubmission on the event loop says of a submission: the reference for the threads. */
async function onTheEventLoop(sub: Submission): Promise<SubmissionCheckResult> {
  try {
    const v = await verifySubmission(sub, trust.store, OPTS);
    return { outcome: 'valid', contentHash: v.contentHash, canonical: v.canonical };
  } catch (err) {
    if (err instanceof CordonError && err.code === 'SIGNATURE_INVALID') return { outcome: 'invalid' };
    throw err;
  }
}

/** Signed submissions, some altered after signing, each with the key its header names. */
function cases(): Array<{ sub: Submission; raw: Buffer }> {
  const out: Submission[] = [];
  for (let i = 0; i < 60; i++) {
    const sub = trust.sign(validContent({ title: `Truck ${i} heading for the pass 🚚 ${'x'.repeat(i * 13)}` }));
    if (i % 5 === 1) sub.content = { ...sub.content, title: 'altered after signing' };
    if (i % 7 === 2) sub.sig = { ...sub.sig, signature: trust.sign(validContent()).sig.signature };
    // Another member order, and whitespace: the same JCS form, the same verdict.
    if (i % 3 === 0) sub.content = JSON.parse(JSON.stringify(Object.fromEntries(Object.entries(sub.content).reverse()))) as Submission['content'];
    out.push(sub);
  }
  return out.map((sub, i) => ({ sub, raw: Buffer.from(i % 4 === 0 ? JSON.stringify(sub, null, 2) : JSON.stringify(sub), 'utf8') }));
}

const keyOf = (sub: Submission) => trust.store.alertKey(JSON.parse(Buffer.from(sub.sig.protected, 'base64url').toString()).kid as string)!;
const withThreads = ED25519_BACKEND === 'libsodium' ? describe : describe.skip;

test('no threads, or no libsodium: no pool, signatures are checked on the event loop', () => {
  expect(createVerifyPool(0)).toBe(NO_POOL);
  expect(NO_POOL.check).toBeUndefined();
});

withThreads('signature checks on worker threads', () => {
  it('gives every submission the verdict and content hash the event loop gives, in one turn and over many', async () => {
    const pool = createVerifyPool(2);
    try {
      expect(pool.threads).toBe(2);
      const all = cases();
      const expected = await Promise.all(all.map((c) => onTheEventLoop(c.sub)));
      expect(expected.filter((e) => e.outcome === 'valid').length).toBeGreaterThan(20);
      expect(expected.some((e) => e.outcome === 'invalid')).toBe(true);
      const together = await Promise.all(all.map((c) => pool.check!(c.raw, keyOf(c.sub))));
      expect(together).toEqual(expected);
      const apart: SubmissionCheckResult[] = [];
      for (const c of all.slice(0, 15)) apart.push(await pool.check!(c.raw, keyOf(c.sub)));
      expect(apart).toEqual(expected.slice(0, 15));
    } finally {
      await pool.close();
    }
  });

  it("refuses bytes that are not a signed submission, and a key other than the signer's", async () => {
    const pool = createVerifyPool(1);
    try {
      const sub = trust.sign(validContent());
      const other = trust.store.alertKey(trust.alertKey('KZ').kid)!;
      for (const raw of ['not json', '{}', '{"content":{},"sig":{"protected":1}}', JSON.stringify({ ...sub, sig: { ...sub.sig, signature: 'AA' } })]) {
        await expect(pool.check!(Buffer.from(raw), keyOf(sub))).resolves.toEqual({ outcome: 'invalid' });
      }
      await expect(pool.check!(Buffer.from(JSON.stringify(sub)), other)).resolves.toEqual({ outcome: 'invalid' });
    } finally {
      await pool.close();
    }
  });

  it('answers checks in flight before close() returns, and after it on the event loop', async () => {
    const pool = createVerifyPool(1);
    const c = cases()[4];
    const expected = await onTheEventLoop(c.sub);
    const pending = Array.from({ length: 40 }, () => pool.check!(c.raw, keyOf(c.sub)));
    await pool.close();
    await expect(Promise.all(pending)).resolves.toEqual(Array(40).fill(expected));
    await expect(pool.check!(c.raw, keyOf(c.sub))).resolves.toEqual(expected);
  });

  it('checks on the event loop what a thread that dies was given, replaces the thread and says so', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cordon-verify-'));
    // A thread that exits on its first batch, every time.
    const dies = join(dir, 'dies.js');
    writeFileSync(dies, "require('node:worker_threads').parentPort.on('message', () => process.exit(3));\n");
    const warnings: string[] = [];
    const pool = createVerifyPool(1, { warn: (_o, msg) => void warnings.push(msg) }, dies);
    try {
      const all = cases().slice(0, 6);
      const expected = await Promise.all(all.map((c) => onTheEventLoop(c.sub)));
      for (let round = 0; round < 3; round++) {
        await expect(Promise.all(all.map((c) => pool.check!(c.raw, keyOf(c.sub))))).resolves.toEqual(expected);
      }
      expect(warnings.length).toBeGreaterThanOrEqual(3);
      expect(warnings[0]).toMatch(/verification thread exited; its jobs checked on the event loop, thread replaced/);
    } finally {
      await pool.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
