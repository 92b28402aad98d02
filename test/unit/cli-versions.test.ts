import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { adjust, versionOptions } from '../../src/cli/sign';
import { UsageError } from '../../src/cli/args';
import { validContent } from '../fixtures/alerts';

/** How `cordon sign` and `cordon publish` make a first version, a correction and a revocation. */
const NOW = Date.parse('2026-12-01T10:00:00.000Z');
const first = () => ({ ...validContent(), created: '2026-11-30T08:15:00.000Z', modified: '2026-11-30T08:15:00.000Z' }) as Record<string, unknown>;

describe('versions made by sign and publish', () => {
  test('--now stamps a first version whole: created = modified = now', () => {
    const c = adjust(first(), versionOptions({ now: true }), NOW);
    expect([c.created, c.modified]).toEqual(['2026-12-01T10:00:00.000Z', '2026-12-01T10:00:00.000Z']);
  });

  test('--now on a later version (one with a correction_note) keeps created', () => {
    const c = adjust({ ...first(), correction_note: 'x' }, versionOptions({ now: true }), NOW);
    expect(c.created).toBe('2026-11-30T08:15:00.000Z');
    expect(c.modified).toBe('2026-12-01T10:00:00.000Z');
  });

  test('--correct keeps created and every version field, sets modified to now and the note', () => {
    const c = adjust(first(), versionOptions({ correct: 'plate corrected' }), NOW);
    expect(c).toMatchObject({ created: '2026-11-30T08:15:00.000Z', modified: '2026-12-01T10:00:00.000Z', correction_note: 'plate corrected' });
    expect(c.revoked).toBeUndefined();
  });

  test('--revoke marks it revoked with the note', () => {
    const c = adjust(first(), versionOptions({ revoke: 'withdrawn' }), NOW);
    expect(c).toMatchObject({ revoked: true, correction_note: 'withdrawn', modified: '2026-12-01T10:00:00.000Z' });
  });

  test('modified is strictly later than the version replaced even when this clock is behind', () => {
    const ahead = { ...first(), modified: '2026-12-01T10:00:05.000Z' };
    expect(adjust(ahead, versionOptions({ correct: 'n' }), NOW).modified).toBe('2026-12-01T10:00:05.001Z');
  });

  test('conflicting or empty options are usage errors', () => {
    expect(() => versionOptions({ correct: 'a', revoke: 'b' })).toThrow(UsageError);
    expect(() => versionOptions({ correct: ' ' })).toThrow(/needs a note/);
    expect(() => versionOptions({ correct: 'a', 'new-id': true })).toThrow(/--new-id/);
    expect(() => versionOptions({ revoke: 'a', now: true })).toThrow(/--now/);
  });
});

test('the README publishes every example content file in examples/', () => {
  const root = resolve(__dirname, '../..');
  const readme = readFileSync(resolve(root, 'README.md'), 'utf8');
  const files = readdirSync(resolve(root, 'examples')).filter((f) => f.endsWith('.json'));
  expect(files.sort()).toEqual(['correction.json', 'first-alert.json', 'revocation.json']);
  for (const f of files) expect(readme).toContain(`--in examples/${f}`);
});
