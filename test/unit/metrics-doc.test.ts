import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { METRICS, PROCESS_METRICS_PREFIX } from '../../src/metric-names';
import { createHttpMetrics, createMetrics } from '../../src/metrics';
import { createStreamMetrics } from '../../src/ws/hub';

const ROOT = join(__dirname, '../..');

/** The bullets of docs/operations.md's "### Metrics" section: - `cordon_name{labels}`: meaning. */
function documentedMetrics(): string[] {
  const doc = readFileSync(join(ROOT, 'docs/operations.md'), 'utf8');
  const start = doc.indexOf('\n### Metrics\n');
  expect(start).toBeGreaterThan(-1);
  const rest = doc.slice(start + 1);
  const next = rest.slice(1).search(/\n#{1,3} /);
  const section = next === -1 ? rest : rest.slice(0, next + 1);
  return [...section.matchAll(/^- `(cordon_[a-z0-9_]+)(?:\{[a-z_,]*\})?`: \S/gm)].map((m) => m[1]);
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

describe('metric registry', () => {
  test('docs/operations.md lists every metric in src/metric-names.ts, once each, and nothing else', () => {
    const documented = documentedMetrics();
    expect([...documented].sort()).toEqual(Object.values(METRICS).sort());
    expect(new Set(documented).size).toBe(documented.length);
  });

  test('names are unique, Prometheus-valid and prefixed cordon_', () => {
    const names = Object.values(METRICS);
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) expect(name).toMatch(/^cordon_[a-z][a-z0-9_]*$/);
    expect(names.some((n) => n.startsWith(PROCESS_METRICS_PREFIX))).toBe(false);
  });

  test('no module under src/ names a metric with a string literal of its own', () => {
    const offenders: string[] = [];
    for (const file of sourceFiles(join(ROOT, 'src'))) {
      if (file.endsWith('metric-names.ts')) continue;
      const text = readFileSync(file, 'utf8');
      // a metric created or looked up by a literal name: new Counter({ name: 'cordon_...' }), getSingleMetric('cordon_...')
      if (/name:\s*['"`]cordon_|getSingleMetric\(\s*['"`]cordon_|counter\(\s*['"`]cordon_/.test(text)) offenders.push(file);
    }
    expect(offenders).toEqual([]);
  });

  test('every name is used by the code that registers it', () => {
    const text = sourceFiles(join(ROOT, 'src'))
      .filter((f) => !f.endsWith('metric-names.ts'))
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');
    for (const key of Object.keys(METRICS)) expect(text).toMatch(new RegExp(`METRICS\\.${key}\\b`));
  });

  test('the ingest, HTTP and stream metrics register under their registry names', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    createHttpMetrics(metrics.registry);
    createStreamMetrics(metrics.registry);
    const registered = (await metrics.registry.getMetricsAsJSON()).map((m) => m.name);
    const known = new Set<string>(Object.values(METRICS));
    for (const name of registered) expect(known.has(name)).toBe(true);
    expect(registered).toEqual(expect.arrayContaining([METRICS.INGEST_ACCEPTED, METRICS.HTTP_CONNECTIONS_REFUSED, METRICS.WS_DESKS, METRICS.REGION_ROLLBACKS]));
  });
});
