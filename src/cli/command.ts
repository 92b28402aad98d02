import type { Writable } from 'node:stream';

/** What a CLI command gets instead of touching process.* directly (so tests can drive it). */
export interface CliIo {
  stdout: Writable;
  stderr: Writable;
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
}

export interface Command {
  name: string;
  summary: string;
  /** Returns the exit code; prints its own usage on bad arguments (exit 2). */
  run(argv: string[], io: CliIo): Promise<number>;
}
