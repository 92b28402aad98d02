/*
 * Runs dist/src/server.js with an in-process CPU profiler that the bench switches on and off:
 * the first SIGWINCH starts sampling, the second stops it and writes the profile (Chrome
 * .cpuprofile JSON) to BENCH_PROFILE_OUT. `--cpu-prof` cannot go through NODE_OPTIONS, and this
 * way the profile covers exactly the measured phase, not start-up and shutdown. SIGWINCH because
 * close-with-grace shuts the server down on SIGUSR2 and Node reserves SIGUSR1 for the inspector.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

const out = process.env.BENCH_PROFILE_OUT ?? `cordon-${process.pid}.cpuprofile`;
const session = new Session();
session.connect();
let running = false;

process.on('SIGWINCH', () => {
  if (!running) {
    running = true;
    session.post('Profiler.enable', () =>
      session.post('Profiler.setSamplingInterval', { interval: 200 }, () => session.post('Profiler.start')),
    );
    return;
  }
  running = false;
  session.post('Profiler.stop', (err, res) => {
    if (err) process.stderr.write(`profiler: ${err.message}\n`);
    else writeFileSync(out, JSON.stringify(res.profile));
  });
});

require('../../src/server');
