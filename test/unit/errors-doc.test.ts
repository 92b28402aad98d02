import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERRORS, PROBLEM_TYPE_BASE, problemBody, toProblem, CordonError } from '../../src/errors';

/** docs/errors.md has one table row per code: | `CODE` | status | ... (as Fastify's errors test does). */
function documentedCodes(): Map<string, number> {
  const doc = readFileSync(join(__dirname, '../../docs/errors.md'), 'utf8');
  const rows = new Map<string, number>();
  for (const m of doc.matchAll(/^\|\s*`([A-Z0-9_]+)`\s*\|\s*(\d{3})\s*\|/gm)) rows.set(m[1], Number(m[2]));
  return rows;
}

describe('error registry', () => {
  test('every code in src/errors.ts is documented in docs/errors.md with the same status, and nothing else is', () => {
    const documented = documentedCodes();
    const registry = new Map(Object.entries(ERRORS).map(([code, def]) => [code, def.status]));
    expect(Object.fromEntries(documented)).toEqual(Object.fromEntries(registry));
  });

  test('a problem body carries type, title, status, detail and code', () => {
    expect(problemBody('VERSION_STALE', 'newer exists')).toEqual({
      type: PROBLEM_TYPE_BASE + 'version-stale',
      title: ERRORS.VERSION_STALE.title,
      status: 409,
      detail: 'newer exists',
      code: 'VERSION_STALE',
    });
  });

  test('an unknown error becomes a 500 that does not echo its message', () => {
    const body = toProblem(new Error('ECONNREFUSED 10.0.0.7:6379 secret-internal-host'));
    expect(body).toMatchObject({ status: 500, code: 'INTERNAL' });
    expect(JSON.stringify(body)).not.toMatch(/ECONNREFUSED|secret-internal-host/);
  });

  test('CordonError keeps its cause and field errors', () => {
    const cause = new Error('inner');
    const err = new CordonError('SUBMISSION_INVALID', '1 violation', { errors: [{ path: '/content/title', message: 'x' }], cause });
    expect(err.cause).toBe(cause);
    expect(err.toProblem().errors).toEqual([{ path: '/content/title', message: 'x' }]);
  });
});
