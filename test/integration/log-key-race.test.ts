import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * Several nodes started at once on one data directory without CORDON_LOG_KEY (the e2e tests start
 * two that way): each must come up, and all must sign with the one key generated there. Before,
 * the slower one found the file created between its read and its write and failed to start
 * (EEXIST), or read it half written.
 */
const KEY_MODULE = resolve(__dirname, '..', '..', 'dist', 'src', 'tlog', 'key.js');
const SCRIPT = `
const { loadLogSigner } = require(${JSON.stringify(KEY_MODULE)});
const quiet = { warn() {}, info() {}, error() {} };
const signer = loadLogSigner({ dataDir: process.argv[1], origin: 'cordon.test', production: false }, quiet);
process.stdout.write(signer.publicKey.toString('base64'));
`;

function loadIn(dir: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((done) => {
    const p = spawn(process.execPath, ['-e', SCRIPT, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr.on('data', (c: Buffer) => (err += c.toString()));
    p.on('close', (code) => done({ code, out, err }));
  });
}

test('nodes starting together on one data directory all start, with one generated log key', async () => {
  for (let trial = 0; trial < 8; trial++) {
    const dir = join(mkdtempSync(join(tmpdir(), 'cordon-logkey-')), 'data');
    const runs = await Promise.all(Array.from({ length: 6 }, () => loadIn(dir)));
    for (const r of runs) expect({ code: r.code, err: r.err }).toEqual({ code: 0, err: '' });
    expect(new Set(runs.map((r) => r.out)).size).toBe(1);
    expect(readdirSync(dir)).toEqual(['log-key.jwk.json']);
  }
}, 60_000);
