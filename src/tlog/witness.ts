import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { EMPTY_HASH, checkTree } from '../domain/tlog/merkle';
import { cosign, openNote, parseCheckpoint, strictBase64, type NoteKey, type NoteSigner } from '../domain/tlog/note';

/**
 * A C2SP tlog-witness (add-checkpoint): remembers the last checkpoint it cosigned per origin and
 * cosigns (tlog-cosignature, cosignature/v1) only a checkpoint the log signed that extends it, as
 * a consistency proof shows. A submission from another old size than the witness's (a log that
 * forgot it, or rolled back behind it) gets 409 with the witness's size; an old size beyond the
 * checkpoint's, 400; a consistency proof that does not verify (a forked tree), 422 and an error
 * line marked security, as C2SP tlog-witness specifies.
 */
export interface WitnessState {
  origins: Record<string, { size: number; root: string }>;
}

export interface WitnessLog {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface WitnessAnswer {
  status: number;
  contentType: string;
  body: string;
}

export class Witness {
  private state: WitnessState;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly opts: {
      signer: NoteSigner;
      /** the log's note key (type 0x01); origins must start with its name and a slash. */
      logKey: NoteKey;
      stateFile?: string;
      log: WitnessLog;
      now?: () => number;
    },
  ) {
    this.state = { origins: {} };
    if (opts.stateFile) {
      try {
        this.state = JSON.parse(readFileSync(opts.stateFile, 'utf8')) as WitnessState;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
  }

  /** The size last cosigned for `origin` (0 when never). */
  sizeOf(origin: string): number {
    return this.state.origins[origin]?.size ?? 0;
  }

  /** One add-checkpoint request; requests are handled one at a time (check and persist are atomic). */
  addCheckpoint(body: string): Promise<WitnessAnswer> {
    const run = this.queue.then(() => this.handle(body));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private handle(body: string): WitnessAnswer {
    const text = (status: number, msg: string): WitnessAnswer => ({ status, contentType: 'text/plain; charset=utf-8', body: `${msg}\n` });
    const blank = body.indexOf('\n\n');
    if (blank < 0) return text(400, 'malformed request');
    const head = body.slice(0, blank).split('\n');
    const m = /^old (0|[1-9][0-9]*)$/.exec(head[0] ?? '');
    if (!m || head.length - 1 > 63) return text(400, 'malformed old size line');
    const oldSize = Number(m[1]);
    const proof: Buffer[] = [];
    for (const line of head.slice(1)) {
      const h = strictBase64(line);
      if (!h || h.length !== 32) return text(400, 'malformed consistency proof line');
      proof.push(h);
    }
    const note = body.slice(blank + 2);
    let cp;
    try {
      const firstLine = note.slice(0, note.indexOf('\n'));
      if (!firstLine.startsWith(`${this.opts.logKey.name}/`)) return text(404, 'unknown origin');
      cp = parseCheckpoint(openNote(note, [this.opts.logKey]).text);
    } catch {
      return text(403, 'the checkpoint is not signed by the log key');
    }
    if (oldSize > cp.size) return text(400, 'old size is greater than the checkpoint size');
    const known = this.state.origins[cp.origin];
    const ourSize = known?.size ?? 0;
    if (oldSize !== ourSize) {
      this.opts.log.warn({ origin: cp.origin, witnessSize: ourSize, oldSize, size: cp.size }, 'witness: old size does not match');
      return { status: 409, contentType: 'text/x.tlog.size', body: `${ourSize}\n` };
    }
    if (cp.size === 0 && !cp.root.equals(EMPTY_HASH)) return text(422, 'an empty tree has the empty root');
    if (oldSize === 0) {
      if (proof.length !== 0) return text(422, 'no proof is needed from size 0');
    } else {
      const oldRoot = Buffer.from(known.root, 'base64');
      const consistent = oldSize === cp.size ? proof.length === 0 && oldRoot.equals(cp.root) : checkTree(proof, cp.size, cp.root, oldSize, oldRoot);
      if (!consistent) {
        this.opts.log.error(
          {
            security: true,
            origin: cp.origin,
            witnessSize: ourSize,
            witnessRoot: known.root,
            size: cp.size,
            root: cp.root.toString('base64'),
            checkpoint: note,
          },
          'witness: THE LOG IS NOT CONSISTENT WITH WHAT THIS WITNESS COSIGNED (fork or rewritten history)',
        );
        return text(422, 'the consistency proof does not verify');
      }
    }
    this.state.origins[cp.origin] = { size: cp.size, root: cp.root.toString('base64') };
    this.persist();
    const line = cosign(note.slice(0, note.lastIndexOf('\n\n') + 1), this.opts.signer, Math.floor((this.opts.now ?? Date.now)() / 1000));
    return { status: 200, contentType: 'text/plain; charset=utf-8', body: `${line}\n` };
  }

  /** Durable before answering: write a temporary file, fsync it, rename over the state file. */
  private persist(): void {
    const file = this.opts.stateFile;
    if (!file) return;
    const tmp = `${file}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify(this.state));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  }

  /** Serves POST /add-checkpoint on host:port (port 0: any). */
  listen(host: string, port: number): Promise<Server> {
    const server = createServer((req, res) => void this.serve(req, res));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve(server));
    });
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'POST' || !path.endsWith('/add-checkpoint')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > 64 * 1024) {
        res.writeHead(413).end();
        return;
      }
      chunks.push(c as Buffer);
    }
    const a = await this.addCheckpoint(Buffer.concat(chunks).toString('utf8'));
    res.writeHead(a.status, { 'content-type': a.contentType }).end(a.body);
  }
}

/** The log's side of add-checkpoint: submits a checkpoint with a consistency proof from `oldSize`. */
export async function submitCheckpoint(url: string, oldSize: number, proof: readonly Buffer[], note: string): Promise<{ status: number; body: string }> {
  const body = `old ${oldSize}\n${proof.map((h) => `${h.toString('base64')}\n`).join('')}\n${note}`;
  const res = await fetch(`${url.replace(/\/$/, '')}/add-checkpoint`, { method: 'POST', body, signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text() };
}
