import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

/**
 * The documentation is self-contained: every relative link in README.md and docs/**\/*.md names a
 * file (or folder) of this repository, every `#anchor` names a heading of its target, and nothing
 * points outside the repository (a clone has nothing beside it).
 */

const ROOT = resolve(__dirname, '..', '..');

function markdownFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...markdownFiles(path));
    else if (name.endsWith('.md')) out.push(path);
  }
  return out;
}

const FILES = [join(ROOT, 'README.md'), ...markdownFiles(join(ROOT, 'docs'))];

/** The text outside fenced code blocks (links inside them are examples, not links). */
function prose(text: string): string {
  return text.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
}

interface Link {
  file: string;
  line: number;
  target: string;
}

/** Inline links `[text](target)` and `[text](target "title")`, and reference definitions `[x]: target`. */
function linksOf(file: string): Link[] {
  const text = prose(readFileSync(file, 'utf8'));
  const out: Link[] = [];
  const lineOf = (index: number): number => text.slice(0, index).split('\n').length;
  for (const m of text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
    out.push({ file, line: lineOf(m.index ?? 0), target: m[1] });
  }
  for (const m of text.matchAll(/^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/gm)) {
    out.push({ file, line: lineOf(m.index ?? 0), target: m[1] });
  }
  return out;
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchorsOf(file: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const m of prose(readFileSync(file, 'utf8')).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = m[1]
      .replace(/`/g, '')
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

const EXTERNAL = /^[a-z][a-z0-9+.-]*:/i;

function where(link: Link): string {
  return `${relative(ROOT, link.file)}:${link.line} -> ${link.target}`;
}

/** The problems of one link, as readable lines (empty when it is fine). */
function problemsOf(link: Link): string[] {
  if (EXTERNAL.test(link.target)) return []; // a URL (https:, mailto:): not a file of the repository
  const [rawPath, anchor] = link.target.split('#', 2) as [string, string | undefined];
  let path: string;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    return [`${where(link)}: not a valid link`];
  }
  if (path.startsWith('/')) return [`${where(link)}: an absolute path; link relative to the file instead`];
  const target = path === '' ? link.file : resolve(dirname(link.file), path);
  const inside = relative(ROOT, target);
  if (inside === '..' || inside.startsWith('..' + sep)) return [`${where(link)}: leaves the repository`];
  if (!existsSync(target)) return [`${where(link)}: no such file in the repository`];
  if (anchor !== undefined && anchor !== '' && target.endsWith('.md') && !anchorsOf(target).has(anchor.toLowerCase())) {
    return [`${where(link)}: no heading with anchor #${anchor} in ${relative(ROOT, target)}`];
  }
  return [];
}

describe('documentation links', () => {
  test('README.md and docs/ hold documentation to check', () => {
    expect(FILES.length).toBeGreaterThan(5);
    expect(FILES.flatMap(linksOf).length).toBeGreaterThan(40);
  });

  test('every relative link resolves to a file of the repository, and every #anchor to a heading', () => {
    const problems = FILES.flatMap(linksOf).flatMap(problemsOf);
    expect(problems).toEqual([]);
  });

  test('no document points at the specification outside the repository (its file, or its sections as "contract §N")', () => {
    const offenders = FILES.flatMap((f) =>
      readFileSync(f, 'utf8')
        .split('\n')
        .map((line, i) => (/shared\/spec|contract\.md|contract\W{0,3}§/i.test(line) ? `${relative(ROOT, f)}:${i + 1}: ${line.trim()}` : ''))
        .filter((s) => s !== ''),
    );
    expect(offenders).toEqual([]);
  });

  test('the checker itself catches a link that leaves the repository, a missing file and a missing anchor', () => {
    const readme = join(ROOT, 'README.md');
    expect(problemsOf({ file: readme, line: 1, target: '../shared/spec/contract.md' })).toEqual([
      'README.md:1 -> ../shared/spec/contract.md: leaves the repository',
    ]);
    expect(problemsOf({ file: readme, line: 2, target: 'docs/no-such-page.md' })).toHaveLength(1);
    expect(problemsOf({ file: readme, line: 3, target: 'docs/errors.md#no-such-heading' })).toHaveLength(1);
    expect(problemsOf({ file: readme, line: 4, target: 'docs/errors.md#errors' })).toEqual([]);
    expect(problemsOf({ file: readme, line: 5, target: '/etc/passwd' })).toHaveLength(1);
  });

  test('the anchors follow GitHub: punctuation dropped, spaces become hyphens, repeated headings numbered', () => {
    const doc = join(ROOT, 'docs', 'protocol.md');
    const anchors = anchorsOf(doc);
    expect(anchors.has('the-desk-stream-get-v1stream')).toBe(true);
    expect(anchors.has('close-codes')).toBe(true);
  });
});
