import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';

/**
 * src/types/generated/ is generated from schemas/ (`npm run gen:types`) and committed. As Fastify's
 * `test:validator:integrity` does, regenerate it and fail when the committed copy differs, so a
 * schema change can never leave the types behind.
 */
test('the types generated from schemas/ are up to date (npm run gen:types)', async () => {
  const root = resolve(__dirname, '../..');
  const run = promisify(execFile)(process.execPath, [resolve(root, 'scripts/gen-types.js'), '--check'], { cwd: root });
  await expect(run).resolves.toBeDefined();
}, 60_000);
