import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { checkRecord, checkTree, leafHash, type Hash } from '../domain/tlog/merkle';
import { SIG_COSIGNATURE_V1, SIG_ED25519, noteKey, openNote, parseCheckpoint, parseVerifierKey, type NoteKey } from '../domain/tlog/note';
import type { DeliveredAlert } from '../domain/types';
import { deliveredLeafData } from '../tlog/leaves';
import { CliError, defineCommand, integer, required, UsageError } from './args';
import type { CliIo, Command } from './command';
import { baseUrl, getOk, TOKEN_OPTIONS, tokenOf } from './replay';
import { RemoteTiles, tileBytes, type RemoteTree } from './tiles';

interface LogState {
  origins: Record<string, { size: number; root: string }>;
}

const b64 = (s: string): Buffer => Buffer.from(s, 'base64');

const logVerify = defineCommand({
  name: 'log verify',
  summary: "Check a region's transparency log: signature, cosignatures, consistency with the last run, inclusion of every alert",
  usage: `--url URL --token TOKEN --region R [--min-cosignatures K] [--state-file PATH]
  --url               a Cordon node
  --token             a desk or ops token (or CORDON_TOKEN)
  --region            the region whose tree to check
  --min-cosignatures  witness cosignatures (trust-store witness keys) the checkpoint must carry (default 0)
  --purpose           with an ops token: the purpose of the replay (audited)
  --state-file        the checkpoint seen last time, per origin (default .cordon-log-state.json); a
                      checkpoint that does not extend it (split view, rollback) fails the check
Alerts retention trimmed are counted, not checked (their hashes stay in the tree); every alert
still held is proved, from the oldest one held.
Exit 0 when everything verifies, 1 with the reason otherwise.`,
  options: {
    url: { type: 'string' },
    ...TOKEN_OPTIONS,
    region: { type: 'string' },
    'min-cosignatures': { type: 'string' },
    'state-file': { type: 'string' },
    purpose: { type: 'string' },
  },
  async run(values, io) {
    const base = baseUrl(values.url);
    const token = tokenOf(values, io);
    const region = required(values.region, 'region');
    const minCosig = integer(values['min-cosignatures'], 'min-cosignatures', 0) ?? 0;
    const stateFile = resolve(io.cwd, values['state-file'] ?? '.cordon-log-state.json');
    const get = async (path: string) => (await getOk(new URL(path, base), token)).text();

    // Keys: the log's and every active witness's, from the trust store.
    const trust = JSON.parse(await get('v1/trust')) as {
      log?: { vkey: string };
      states: Record<string, { keys: Array<{ use: string; name?: string; status: string; jwk: { x: string } }> }>;
    };
    if (!trust.log) throw new CliError('the node publishes no transparency-log key (GET /v1/trust has no log)');
    const logKey = parseVerifierKey(trust.log.vkey);
    if (logKey.type !== SIG_ED25519) throw new CliError('the log key is not a note signing key');
    const witnesses: NoteKey[] = [];
    for (const s of Object.values(trust.states)) {
      for (const k of s.keys)
        if (k.use === 'witness' && k.status === 'active' && k.name) witnesses.push(noteKey(k.name, SIG_COSIGNATURE_V1, Buffer.from(k.jwk.x, 'base64url')));
    }

    const note = await get(`v1/regions/${encodeURIComponent(region)}/log/checkpoint`);
    let opened;
    try {
      opened = openNote(note, [logKey, ...witnesses]);
    } catch (err) {
      throw new CliError(`checkpoint does not verify: ${(err as Error).message}`, { cause: err });
    }
    if (!opened.verified.some((s) => s.name === logKey.name && s.keyId === logKey.keyId)) throw new CliError('checkpoint is not signed by the log key');
    const cosigners = new Set(opened.verified.filter((s) => s.name !== logKey.name || s.keyId !== logKey.keyId).map((s) => `${s.name}/${s.keyId}`));
    if (cosigners.size < minCosig) throw new CliError(`checkpoint has ${cosigners.size} witness cosignature(s), ${minCosig} required`);
    const cp = parseCheckpoint(opened.text);
    io.stdout.write(`checkpoint ${cp.origin} size ${cp.size} root ${cp.root.toString('base64')}: log signature and ${cosigners.size} cosignature(s) verify\n`);

    // Consistency with what this state file saw last time.
    let state: LogState = { origins: {} };
    try {
      state = JSON.parse(readFileSync(stateFile, 'utf8')) as LogState;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new CliError(`cannot read ${stateFile}: ${(err as Error).message}`, { cause: err });
    }
    const prev = state.origins[cp.origin];
    if (prev) {
      if (cp.size < prev.size) throw new CliError(`ROLLBACK: the log shows size ${cp.size}, smaller than the ${prev.size} seen before`);
      if (cp.size === prev.size) {
        if (prev.root !== cp.root.toString('base64')) throw new CliError(`SPLIT VIEW: size ${cp.size} has another root than seen before`);
      } else {
        const c = JSON.parse(await get(`v1/regions/${encodeURIComponent(region)}/log/consistency?from=${prev.size}&to=${cp.size}`)) as { proof: string[] };
        if (!checkTree(c.proof.map(b64), cp.size, cp.root, prev.size, b64(prev.root))) {
          throw new CliError(`SPLIT VIEW: the tree of size ${cp.size} does not extend the tree of size ${prev.size} seen before`);
        }
      }
      io.stdout.write(`consistent with size ${prev.size} seen before\n`);
    }

    // Inclusion of every alert the token may replay, from the oldest one held: retention trims
    // alert bodies (the replay answers 410 before the oldest held), never the tree's hashes.
    let after = 0;
    let checked = 0;
    let trimmedBelow = 0;
    const epochOfTree = cp.origin.split('/').pop();
    // Proofs are made here from the tree's hash tiles (about one request per 256 alerts) and
    // checked against the signed root: a tile the node altered fails the check.
    const prove = tileProver(base, token, { path: `v1/regions/${encodeURIComponent(region)}/log/`, key: cp.origin });
    for (;;) {
      const url = new URL(
        `v1/regions/${encodeURIComponent(region)}/alerts?after=${after}&limit=1000${values.purpose ? `&purpose=${encodeURIComponent(values.purpose)}` : ''}`,
        base,
      );
      const r = await replayPage(url, token);
      if ('trimmed' in r) {
        const { earliest, epoch } = r.trimmed;
        if (epoch !== undefined && epoch !== epochOfTree)
          throw new CliError(`the region's log moved to epoch ${epoch} while this checked the tree of ${cp.origin}; run again`);
        if (earliest - 1 <= after) throw new CliError(`the replay answered 410 for after=${after} with earliest ${earliest}`);
        after = earliest - 1;
        trimmedBelow = after;
        continue;
      }
      const page = r.page;
      for (const d of page.items) {
        if (d.seq > cp.size || epochOfTree !== d.epoch) continue;
        if (!checkRecord(await prove(cp.size, d.seq - 1), cp.size, cp.root, d.seq - 1, leafHash(deliveredLeafData(d)))) {
          throw new CliError(`alert at seq ${d.seq} is NOT in the signed tree`);
        }
        checked++;
      }
      if (page.next === null || page.items.length === 0) break;
      after = page.next;
    }
    if (trimmedBelow > 0) {
      const inTree = Math.min(trimmedBelow, cp.size);
      io.stdout.write(
        `${inTree} ${inTree === 1 ? 'leaf' : 'leaves'} (seq 1..${inTree}) trimmed by retention: their alert bodies are no longer held, so they were not checked here; ` +
          `their hashes are still in the tree (the root above commits to them), and inclusion proofs for them still work for anyone who kept those alerts\n`,
      );
    }
    io.stdout.write(`${checked} alert(s) proved included${trimmedBelow > 0 ? ` (every alert held, from seq ${trimmedBelow + 1}, the oldest one held)` : ''}\n`);

    state.origins[cp.origin] = { size: cp.size, root: cp.root.toString('base64') };
    writeFileSync(`${stateFile}.tmp`, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
    renameSync(`${stateFile}.tmp`, stateFile);
    return 0;
  },
});

/**
 * One page of the replay, or where the held history starts when the position is before the
 * oldest alert held (410 HISTORY_TRIMMED). Other errors are getOk's.
 */
async function replayPage(url: URL, token: string): Promise<{ trimmed: { earliest: number; epoch?: string } } | { page: ReplayPage }> {
  let res: Response;
  try {
    res = await fetch(url, { headers: { accept: 'application/json', authorization: `Bearer ${token}` } });
  } catch {
    res = await getOk(url, token); // throws the usual "cannot reach"
  }
  if (res.status === 410) {
    const body = (await res
      .text()
      .then((x) => JSON.parse(x) as unknown)
      .catch(() => ({}))) as { code?: string; earliest?: unknown; epoch?: unknown };
    if (body.code === 'HISTORY_TRIMMED' && Number.isSafeInteger(body.earliest)) {
      return { trimmed: { earliest: body.earliest as number, epoch: typeof body.epoch === 'string' ? body.epoch : undefined } };
    }
  }
  if (!res.ok) res = await getOk(url, token); // the problem, as a CliError
  // Parsed here, not by res.json(): canonicalize accepts only plain objects of this realm.
  return { page: JSON.parse(await res.text()) as ReplayPage };
}

/**
 * For the CLI's checks of a whole tree (`cordon log verify`, `cordon audit --verify`): proofs of
 * leaves of `tree` from its tiles on the node at `base`. A node that does not answer or refuses is
 * getOk's CliError; tiles of the wrong size or not matching the tree are a CliError too.
 */
export function tileProver(base: URL, token: string, tree: RemoteTree): (size: number, index: number) => Promise<Hash[]> {
  const tiles = new RemoteTiles(async (path) => tileBytes(await getOk(new URL(path, base), token, 'application/octet-stream')));
  return async (size, index) => {
    try {
      return await tiles.prove(tree, size, index);
    } catch (err) {
      if (err instanceof CliError) throw err;
      throw new CliError(`the tiles the node serves for leaf ${index} of ${tree.key} are malformed: ${(err as Error).message}`, { cause: err });
    }
  };
}

interface ReplayPage {
  items: DeliveredAlert[];
  next: number | null;
  epoch: string;
}

/** `cordon log <subcommand>`: the transparency log (contract §12). */
export const log: Command = {
  name: 'log',
  summary: "Transparency log: 'cordon log verify' checks a region's checkpoint, consistency and inclusion",
  async run(argv: string[], io: CliIo): Promise<number> {
    if (argv[0] === 'verify') return logVerify.run(argv.slice(1), io);
    if (argv[0] === '--help' || argv[0] === '-h' || argv[0] === undefined) {
      io.stdout.write(`usage: cordon log verify ${logVerify.usage}\n`);
      return argv[0] === undefined ? 2 : 0;
    }
    io.stderr.write(`cordon log: unknown subcommand '${argv[0]}' (try: cordon log verify)\n`);
    return 2;
  },
};

export { UsageError };
