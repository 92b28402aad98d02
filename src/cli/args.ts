import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { CliIo, Command } from './command';

/** Bad arguments: the command prints the message and its usage, exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A failure the user can act on (missing file, bad JSON, refused content): message, exit 1. */
export class CliError extends Error {
  constructor(message: string, opts?: { cause?: unknown }) {
    super(message, opts);
    this.name = 'CliError';
  }
}

export type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;
export type Values<O extends OptionSpec> = { [K in keyof O]?: O[K]['type'] extends 'string' ? string : boolean };

export interface CommandDef<O extends OptionSpec> {
  name: string;
  summary: string;
  /** Lines after `usage: cordon <name>`; the first one is the synopsis. */
  usage: string;
  options: O;
  /** accept positional arguments (handed to run); default: refused as a usage error. */
  positionals?: boolean;
  run(values: Values<O>, io: CliIo, positionals: string[]): Promise<number>;
}

/**
 * Builds a Command from a declarative option list: parsing, `--help`, usage errors (exit 2) and
 * user errors (exit 1) are handled here once, so a command's body is only its work.
 */
export function defineCommand<O extends OptionSpec>(def: CommandDef<O>): Command & { usage: string } {
  const usage = `usage: cordon ${def.name} ${def.usage}\n`;
  return {
    name: def.name,
    summary: def.summary,
    usage,
    async run(argv, io) {
      let values: Values<O>;
      let positionals: string[];
      try {
        const parsed = parseArgs({
          args: argv,
          options: { ...def.options, help: { type: 'boolean', short: 'h' } },
          strict: true,
          allowPositionals: def.positionals ?? false,
        });
        if ((parsed.values as { help?: boolean }).help) {
          io.stdout.write(`${def.summary}\n${usage}`);
          return 0;
        }
        values = parsed.values;
        positionals = parsed.positionals;
      } catch (err) {
        return usageFailure(def.name, (err as Error).message, usage, io);
      }
      try {
        return await def.run(values, io, positionals);
      } catch (err) {
        if (err instanceof UsageError) return usageFailure(def.name, err.message, usage, io);
        if (err instanceof CliError) {
          io.stderr.write(`cordon ${def.name}: ${err.message}\n`);
          return 1;
        }
        throw err;
      }
    },
  };
}

function usageFailure(name: string, message: string, usage: string, io: CliIo): number {
  io.stderr.write(`cordon ${name}: ${message}\n${usage}`);
  return 2;
}

export function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw new UsageError(`--${flag} is required`);
  return value;
}

/** A comma-separated list, trimmed, without empty items. */
export function list(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

export function integer(value: string | undefined, flag: string, min = 0): number | undefined {
  if (value === undefined) return undefined;
  if (!/^-?[0-9]+$/.test(value) || !Number.isSafeInteger(Number(value)) || Number(value) < min) {
    throw new UsageError(`--${flag} must be an integer >= ${min}`);
  }
  return Number(value);
}

/** `8h`, `30m`, `2d`, `90s` or plain seconds → seconds. */
export function duration(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const m = /^([0-9]+)([smhd]?)$/.exec(value);
  if (!m) throw new UsageError(`--${flag} must be a duration like 90s, 30m, 8h or 2d`);
  const n = Number(m[1]);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  if (n <= 0) throw new UsageError(`--${flag} must be positive`);
  return n * unit;
}

export function readText(path: string, io: CliIo, what: string): string {
  const full = resolve(io.cwd, path);
  try {
    return readFileSync(full, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : String(code ?? err);
    throw new CliError(`cannot read ${what} ${path}: ${why}`, { cause: err });
  }
}

export function readJson(path: string, io: CliIo, what: string): unknown {
  const text = readText(path, io, what);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CliError(`${what} ${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

export function print(io: CliIo, value: unknown): void {
  io.stdout.write(JSON.stringify(value, null, 2) + '\n');
}
