import { Writable } from 'node:stream';
import { main } from '../../src/cli/main';

/** A writable that keeps what is written; `tty` makes it pass for a terminal (progress bars). */
export function sink(tty = false): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(Buffer.from(chunk));
      cb();
    },
  });
  if (tty) Object.assign(stream, { isTTY: true });
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the `cordon` CLI in process, in `cwd`, with an empty environment (or `opts.env`). */
export async function runCordon(cwd: string, argv: string[], opts: { tty?: boolean; env?: Record<string, string> } = {}): Promise<CliRun> {
  const out = sink();
  const err = sink(opts.tty);
  const code = await main(argv, { stdout: out.stream, stderr: err.stream, env: opts.env ?? {}, cwd });
  return { code, stdout: out.text(), stderr: err.text() };
}
