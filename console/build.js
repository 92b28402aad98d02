'use strict';
/*
 * Builds the console (console/src) into dist/console: one hashed script and stylesheet (esbuild),
 * their gzip and brotli forms (served as is by @fastify/static), and index.html naming them.
 * `npm run build` runs it; tests call build() before driving a browser.
 */
const { mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, readFileSync } = require('node:fs');
const { join, basename, resolve } = require('node:path');
const zlib = require('node:zlib');

const ROOT = resolve(__dirname, '..');
const OUT = join(ROOT, 'dist', 'console');

async function build({ out = OUT, minify = true } = {}) {
  const esbuild = require('esbuild');
  // Built beside and renamed into place: a node serving the old build never sees half a new one.
  const final = out;
  out = `${final}.tmp-${process.pid}`;
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const result = await esbuild.build({
    entryPoints: { app: join(__dirname, 'src', 'main.ts'), styles: join(__dirname, 'src', 'styles.css') },
    bundle: true,
    minify,
    sourcemap: false,
    format: 'esm',
    target: ['chrome110', 'firefox115', 'safari16'],
    outdir: out,
    entryNames: '[name].[hash]',
    metafile: true,
    legalComments: 'none',
    logLevel: 'warning',
    charset: 'utf8',
  });
  const files = Object.keys(result.metafile.outputs).map((p) => basename(p));
  const js = files.find((f) => f.startsWith('app.') && f.endsWith('.js'));
  const css = files.find((f) => f.startsWith('styles.') && f.endsWith('.css'));
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Cordon console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${css}">
<script type="module" src="${js}"></script>
</head>
<body>
<div id="app"><noscript>The Cordon console needs JavaScript.</noscript></div>
</body>
</html>
`;
  writeFileSync(join(out, 'index.html'), html);
  for (const f of readdirSync(out)) {
    if (!/\.(js|css|html)$/.test(f)) continue;
    const data = readFileSync(join(out, f));
    writeFileSync(join(out, `${f}.gz`), zlib.gzipSync(data, { level: 9 }));
    writeFileSync(join(out, `${f}.br`), zlib.brotliCompressSync(data));
  }
  rmSync(final, { recursive: true, force: true });
  renameSync(out, final);
  return { out: final, js, css };
}

/** Builds unless dist/console is newer than every source file (tests call this before a browser). */
async function ensureBuilt() {
  const newest = (dir) => readdirSync(dir).reduce((m, f) => Math.max(m, statSync(join(dir, f)).mtimeMs), 0);
  const sources = Math.max(newest(join(__dirname, 'src')), statSync(__filename).mtimeMs, newest(join(ROOT, 'src', 'domain')));
  let built = 0;
  try {
    built = statSync(join(OUT, 'index.html')).mtimeMs;
  } catch {
    built = 0;
  }
  if (built < sources) await build();
}

module.exports = { build, ensureBuilt, OUT };

if (require.main === module) {
  build().then(
    ({ out, js, css }) => process.stdout.write(`console built in ${out}: ${js}, ${css}\n`),
    (err) => {
      process.stderr.write(`console build failed: ${err.message}\n`);
      process.exit(1);
    },
  );
}
