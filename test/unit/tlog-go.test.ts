import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { arrayHashReader, leafHash, proveRecord, proveTree, storedHashesForRecordHash, treeHash, type Hash } from '../../src/domain/tlog/merkle';
import { newTiles, readTileData, tilePath, tileHashReader, type Tile } from '../../src/domain/tlog/tile';
import { SIG_COSIGNATURE_V1, SIG_ED25519, cosign, formatCheckpoint, formatVerifierKey, noteSigner, signNote } from '../../src/domain/tlog/note';

/**
 * Cordon's tree hashes, proofs, tiles and signed notes against Go's golang.org/x/mod/sumdb/tlog and
 * sumdb/note (test/tlog-go/main.go), the implementation behind Go's checksum database.
 * .ci/run installs Go (golang-go, golang-golang-x-mod-dev); without it this suite is skipped.
 */
const GOPATH = '/usr/share/gocode';
const hasGo = spawnSync('go', ['version']).status === 0 && spawnSync('test', ['-d', `${GOPATH}/src/golang.org/x/mod/sumdb/tlog`]).status === 0;
const suite = hasGo ? describe : describe.skip;
const title = hasGo
  ? "Go's sumdb/tlog and sumdb/note agree with Cordon"
  : "Go's sumdb/tlog cross-check — SKIPPED: `go` or golang.org/x/mod is not installed (apt-get install golang-go golang-golang-x-mod-dev; .ci/run does this)";

interface GoAnswer {
  roots: string[];
  inclusion: string[][];
  consistency: string[][];
  tiles: { path: string; data: string }[][];
  notes: { ok: boolean; err?: string; text?: string; sigs?: string[] }[];
}

let binary = '';
function runGo(request: unknown): GoAnswer {
  if (!binary) {
    const dir = mkdtempSync(join(tmpdir(), 'cordon-tlog-go-'));
    binary = join(dir, 'tlog-go');
    const env = { ...process.env, GO111MODULE: 'off', GOPATH, GOCACHE: join(dir, 'cache'), GOFLAGS: '' };
    const built = spawnSync('go', ['build', '-o', binary, '.'], { cwd: resolve(__dirname, '../tlog-go'), env, encoding: 'utf8' });
    if (built.status !== 0) throw new Error(`go build failed: ${built.stderr}`);
  }
  const out = spawnSync(binary, [], { input: JSON.stringify(request), encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (out.status !== 0) throw new Error(`tlog-go failed: ${out.stderr}`);
  return JSON.parse(out.stdout) as GoAnswer;
}

const b64 = (h: Buffer): string => h.toString('base64');

suite(title, () => {
  jest.setTimeout(120_000);
  const N = 1100;
  const leaves = Array.from({ length: N }, (_, i) => Buffer.concat([Buffer.from(`${i}:`), randomBytes(i % 50)]));
  const stored: Hash[] = [];
  const reader = arrayHashReader(stored);
  const inclusion: [number, number][] = [];
  const consistency: [number, number][] = [];
  const tileRanges: [number, number][] = [
    [0, 1],
    [0, 256],
    [255, 257],
    [100, 700],
    [512, 513],
    [0, N],
    [1000, N],
  ];
  for (const t of [1, 2, 3, 7, 8, 255, 256, 257, 511, 512, 513, 777, 1024, 1025, N]) {
    for (const n of [0, 1, t >> 1, t - 2, t - 1]) if (n >= 0 && n < t) inclusion.push([t, n]);
    for (const n of [1, 2, t >> 1, t - 1, t]) if (n >= 1 && n <= t) consistency.push([t, n]);
  }

  const log = noteSigner('cordon.localhost/KZ-KG-01/ep1', SIG_ED25519, generateKeyPairSync('ed25519').privateKey);
  const witnessKey = generateKeyPairSync('ed25519').privateKey;
  const witness = noteSigner('witness.kz.example/w1', SIG_COSIGNATURE_V1, witnessKey);
  let answer: GoAnswer;
  let checkpointText = '';
  let signed = '';

  beforeAll(async () => {
    for (let n = 0; n < N; n++) stored.push(...(await storedHashesForRecordHash(n, leafHash(leaves[n]), reader)));
    checkpointText = formatCheckpoint({ origin: log.name, size: N, root: await treeHash(N, reader) });
    signed = signNote(checkpointText, log) + cosign(checkpointText, witness, 1_767_225_600) + '\n';
    const cosigKeys = [{ name: witness.name, pub: b64(witness.publicKey) }];
    answer = runGo({
      leaves: leaves.map(b64),
      inclusion,
      consistency,
      tiles: tileRanges,
      notes: [
        { msg: signed, vkeys: [formatVerifierKey(log)], cosigKeys },
        { msg: signed.replace(`\n${N}\n`, `\n${N - 1}\n`), vkeys: [formatVerifierKey(log)], cosigKeys },
        {
          msg: signNote(checkpointText, log) + flipLastSignatureByte(cosign(checkpointText, witness, 1_767_225_600)) + '\n',
          vkeys: [formatVerifierKey(log)],
          cosigKeys,
        },
      ],
    });
  });

  it('computes the same root for every size 1..1100', async () => {
    for (let t = 1; t <= N; t++) expect(b64(await treeHash(t, reader))).toBe(answer.roots[t]);
  });

  it('produces the same inclusion and consistency proofs', async () => {
    for (let i = 0; i < inclusion.length; i++) {
      const [t, n] = inclusion[i];
      expect((await proveRecord(t, n, reader)).map(b64)).toEqual(answer.inclusion[i] ?? []);
    }
    for (let i = 0; i < consistency.length; i++) {
      const [t, n] = consistency[i];
      expect((await proveTree(t, n, reader)).map(b64)).toEqual(answer.consistency[i] ?? []);
    }
  });

  it("writes tiles with Go's paths and bytes, and reads every Go tile back from Cordon's layout", async () => {
    // Cordon keeps one growing copy per tile (the widest); a narrower path is a prefix of it.
    const full = new Map<string, Buffer>();
    for (const t of newTiles(0, N)) full.set(`${t.level}/${t.n}`, await readTileData(t, reader));
    for (let r = 0; r < tileRanges.length; r++) {
      const [oldSize, newSize] = tileRanges[r];
      const ours = newTiles(oldSize, newSize);
      const go = answer.tiles[r];
      // Go 0.7 (Debian's) also lists every intermediate partial width, and re-lists a level that did
      // not grow; current Go (and Cordon) list the final tile of each grown level only.
      const grew = (level: number): boolean => Math.floor(oldSize / 256 ** level) !== Math.floor(newSize / 256 ** level);
      const goFinal = new Map<string, { path: string; data: string }>();
      for (const g of go) if (grew(parseGoPath(g.path).level)) goFinal.set(g.path.replace(/\.p\/\d+$/, ''), g);
      expect(ours.map(tilePath)).toEqual([...goFinal.values()].map((g) => g.path));
      for (const g of go) {
        const t = parseGoPath(g.path);
        const data = (await readTileData(t, reader)).toString('base64');
        expect(data).toBe(g.data);
        expect(
          full
            .get(`${t.level}/${t.n}`)!
            .subarray(0, t.width * 32)
            .toString('base64'),
        ).toBe(g.data);
      }
    }
    const source = { readTiles: async (ts: readonly Tile[]) => ts.map((t) => full.get(`${t.level}/${t.n}`) ?? null) };
    expect(b64(await treeHash(777, tileHashReader(777, source)))).toBe(answer.roots[777]);
  });

  it("verifies Cordon's checkpoint and the witness cosignature with Go's note.Open, and refuses altered ones", () => {
    expect(answer.notes[0]).toEqual({ ok: true, text: checkpointText, sigs: [log.name, witness.name] });
    expect(answer.notes[1].ok).toBe(false);
    expect(answer.notes[2].ok).toBe(false);
  });
});

function parseGoPath(path: string): Tile {
  const m = /^tile\/(\d+)\/(.+?)(?:\.p\/(\d+))?$/.exec(path)!;
  const n = m[2].split('/').reduce((acc, g) => acc * 1000 + Number(g.replace('x', '')), 0);
  return { level: Number(m[1]), n, width: m[3] ? Number(m[3]) : 256 };
}

/**
 * The signature line with one byte of the signature itself changed. Changing the last base64
 * character would not do: its low bits may be padding, which decoders ignore (a flaky tamper).
 */
function flipLastSignatureByte(line: string): string {
  const m = /^(.* )([A-Za-z0-9+/=]+)$/.exec(line.replace(/\n$/, ''));
  if (!m) throw new Error(`not a signature line: ${line}`);
  const bytes = Buffer.from(m[2], 'base64');
  bytes[bytes.length - 1] ^= 0x01;
  return m[1] + bytes.toString('base64');
}
