/**
 * The human line a node prints once it listens, beside the JSON log: where to go next. Pure, so a
 * test reads it without a process.
 */
export function startupBanner(opts: { host: string; port: number; log: string; bus: string; file?: string }): string {
  // A wildcard address is not somewhere to point a browser: name this machine instead.
  const host = opts.host === '0.0.0.0' || opts.host === '::' ? 'localhost' : opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const base = `http://${host}:${opts.port}`;
  const mode =
    opts.bus !== 'memory' || opts.log === 'redis'
      ? `production mode: ${opts.log} log, ${opts.bus === 'memory' ? 'in-process' : opts.bus} bus`
      : opts.log === 'sqlite'
        ? `embedded mode: alerts and audit trail kept in ${opts.file ?? 'the SQLite file'}`
        : 'embedded mode: in-memory log and bus, nothing kept across restarts';
  return `cordon is up (${mode}). Console: ${base}/console/  Health: ${base}/readyz  API: ${base}/v1/`;
}

/** A bind that failed because the port is taken says which setting chooses it. */
export function listenFailure(err: unknown, setting: string, host: string, port: number): Error {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EADDRINUSE') {
    return new Error(`${host}:${port} is already in use (EADDRINUSE): another process listens there; choose a free port with ${setting}`, { cause: err });
  }
  if (code === 'EACCES') {
    return new Error(`not allowed to listen on ${host}:${port} (EACCES); choose a port above 1023 with ${setting}`, { cause: err });
  }
  return err instanceof Error ? err : new Error(String(err));
}
