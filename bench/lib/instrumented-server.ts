/*
 * Runs dist/src/server.js unchanged, with two switches the benches pull by signal:
 *   SIGWINCH  first: start a CPU profile; second: stop it and write it (Chrome .cpuprofile JSON)
 *             to BENCH_PROFILE_OUT. `--cpu-prof` cannot go through NODE_OPTIONS, and this way the
 *             profile covers exactly the measured phase, not start-up and shutdown.
 *   SIGURG    a full garbage collection (when started with --expose-gc), so that memory per desk
 *             can be read without the garbage of 1,000 handshakes in it; then process.memoryUsage()
 *             is written to BENCH_MEMORY_OUT as JSON, when set.
 * Not SIGUSR1/2: Node reserves SIGUSR1 for the inspector and close-with-grace shuts down on SIGUSR2.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

const out = process.env.BENCH_PROFILE_OUT ?? `cordon-${process.pid}.cpuprofile`;
let session: Session | undefined;
let running = false;

process.on('SIGWINCH', () => {
  if (!session) {
    session = new Session();
    session.connect();
  }
  const s = session;
  if (!running) {
    running = true;
    s.post('Profiler.enable', () => s.post('Profiler.setSamplingInterval', { interval: 200 }, () => s.post('Profiler.start')));
    return;
  }
  running = false;
  s.post('Profiler.stop', (err, res) => {
    if (err) process.stderr.write(`profiler: ${err.message}\n`);
    else writeFileSync(out, JSON.stringify(res.profile));
  });
});

process.on('SIGURG', () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  // What is left on the V8 heap, for the bench to read (memory per desk beside RSS).
  if (process.env.BENCH_MEMORY_OUT) writeFileSync(process.env.BENCH_MEMORY_OUT, JSON.stringify(process.memoryUsage()));
});

// eslint-disable-next-line @typescript-eslint/no-require-imports -- the server starts on load, after the hooks above are in place
require('../../src/server');
