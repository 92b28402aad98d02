import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { processEnvironment } from '../config';
import type { CliIo, Command } from './command';
import { keygen } from './keygen';
import { publish } from './publish';
import { sign } from './sign';
import { token } from './token';
import { verify } from './verify';
import { replay } from './replay';
import { audit } from './audit';
import { tail } from './tail';
import { trust } from './trust';
import { backup, restore } from './backup';
import { migrate } from './migrate';
import { witness } from './witness';
import { log } from './log';

/** Every command, in help order. A new command is one file and one line here. */
export const COMMANDS: readonly Command[] = [keygen, sign, publish, token, verify, tail, replay, audit, log, witness, trust, backup, restore, migrate];

function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, env: processEnvironment(), cwd: process.cwd() };
}

function help(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'Cordon: signed alert exchange between border agencies.',
    '',
    'usage: cordon <command> [options]',
    '',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    "Run 'cordon help <command>' or 'cordon <command> --help' for its options; 'cordon --version' for the version.",
    '',
  ].join('\n');
}

/** The version in package.json: two levels up from src/cli, three from dist/src/cli. */
export function cliVersion(): string {
  for (const up of ['../..', '../../..']) {
    try {
      const pkg = JSON.parse(readFileSync(resolve(__dirname, up, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'cordon' && pkg.version) return pkg.version;
    } catch {
      /* try the next candidate */
    }
  }
  return 'unknown';
}

/** Runs one CLI invocation and returns its exit code: 0 ok, 1 failed, 2 bad arguments. */
export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    io.stderr.write(help());
    return 2;
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    io.stdout.write(`cordon ${cliVersion()}\n`);
    return 0;
  }
  if (name === 'help' || name === '--help' || name === '-h') {
    const topic = rest[0];
    if (topic === undefined) {
      io.stdout.write(help());
      return 0;
    }
    const cmd = COMMANDS.find((c) => c.name === topic);
    if (!cmd) {
      io.stderr.write(`cordon: unknown command '${topic}'\n\n${help()}`);
      return 2;
    }
    return cmd.run(['--help'], io);
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    io.stderr.write(`cordon: unknown command '${name}'\n\n${help()}`);
    return 2;
  }
  try {
    return await cmd.run(rest, io);
  } catch (err) {
    io.stderr.write(`cordon ${name}: ${(err as Error)?.message ?? String(err)}\n`);
    return 1;
  }
}
