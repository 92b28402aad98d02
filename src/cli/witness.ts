import { SIG_COSIGNATURE_V1, formatVerifierKey, noteSigner, parseVerifierKey, SIG_ED25519 } from '../domain/tlog/note';
import { Witness } from '../tlog/witness';
import { CliError, defineCommand, readJson, required, UsageError } from './args';
import { loadSigningKey } from './keygen';

/**
 * `cordon witness`: a member state's C2SP tlog-witness for Cordon's transparency log. It cosigns a
 * checkpoint only when it extends the last one it cosigned for that origin.
 */
export const witness = defineCommand({
  name: 'witness',
  summary: 'Run a transparency-log witness (C2SP tlog-witness) that cosigns only extensions of what it saw',
  usage: `--key WITNESS_KEY.jwk.json --log-key VKEY --listen HOST:PORT [--state-file PATH] [--name NAME]
  --key         the witness's private key file (cordon keygen --use witness)
  --log-key     the log's verifier key: "log.vkey" of GET /v1/trust
  --listen      address to serve POST /add-checkpoint on, e.g. 0.0.0.0:7380 (port 0: any)
  --state-file  where the last cosigned checkpoint per origin is kept, durably (default: witness-state.json)
  --name        the witness's note key name (default: the name in the key file)
Runs until interrupted; refusals of forked or rolled-back logs are logged on stderr as JSON lines.`,
  options: {
    key: { type: 'string' },
    'log-key': { type: 'string' },
    listen: { type: 'string' },
    'state-file': { type: 'string' },
    name: { type: 'string' },
  },
  async run(values, io) {
    const keyPath = required(values.key, 'key');
    const key = loadSigningKey(keyPath, io);
    const file = readJson(keyPath, io, 'key file') as { cordon?: { name?: unknown } };
    const name = values.name ?? (typeof file.cordon?.name === 'string' ? file.cordon.name : undefined);
    if (!name) throw new UsageError('--name is required (the key file names none)');
    let logKey;
    try {
      logKey = parseVerifierKey(required(values['log-key'], 'log-key'));
    } catch (err) {
      throw new CliError(`--log-key: ${(err as Error).message}`, { cause: err });
    }
    if (logKey.type !== SIG_ED25519) throw new UsageError("--log-key must be the log's note key (type 0x01)");
    const m = /^(.*):(\d+)$/.exec(required(values.listen, 'listen'));
    if (!m) throw new UsageError('--listen must be HOST:PORT');
    const signer = noteSigner(name, SIG_COSIGNATURE_V1, key.privateKey);
    const line = (level: string) => (obj: object, msg: string) => io.stderr.write(JSON.stringify({ level, msg, ...obj }) + '\n');
    const w = new Witness({
      signer,
      logKey,
      stateFile: values['state-file'] ?? 'witness-state.json',
      log: { info: line('info'), warn: line('warn'), error: line('error') },
    });
    const server = await w.listen(m[1], Number(m[2]));
    const addr = server.address();
    const where = typeof addr === 'object' && addr ? `${addr.address}:${addr.port}` : String(addr);
    io.stderr.write(`witness ${name} (${formatVerifierKey(signer)}) serving POST /add-checkpoint on ${where}\n`);
    await new Promise<void>((resolve) => {
      const stop = () => server.close(() => resolve());
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    return 0;
  },
});
