// Bundles the front end into dist/:
//   dist/assets/main-<hash>.js    (+ .gz, .br)   the app (Preact, via preact/compat), minified ES module
//   dist/assets/main-<hash>.css   (+ .gz, .br)   todomvc-app-css + src/app.css
//   dist/assets/*-<hash>.svg      (+ .gz, .br)   images the CSS refers to, favicon
//   dist/index.html                              links the hashed files
//   sourcemaps/*.map                             for debugging; outside dist/, so never served
// Hashed names let the server cache /assets/* forever; index.html must not be
// cached. No inline script or style anywhere: the server's CSP forbids them.
// The .gz and .br files are the same bytes compressed once, at build time, at
// the highest levels: the server picks one by Accept-Encoding (views/static.py).
//
// Why Preact: React 19 + react-dom alone are ~60 KiB gzip, which left no room
// under the 80 KiB budget for lists, sharing and the offline outbox. The code
// is written against the React API and preact/compat (about 11 KiB) runs it.
//
// Usage: node build.mjs   (npm run build)

import * as esbuild from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants as zlib, gzipSync } from 'node:zlib';
import { readdir, rename } from 'node:fs/promises';

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, 'dist');
const assets = join(dist, 'assets');
const maps = join(root, 'sourcemaps');
const entryPoint = 'src/main.jsx';

// Start clean so stale hashed files never pile up.
await rm(dist, { recursive: true, force: true });
await rm(maps, { recursive: true, force: true });
await mkdir(assets, { recursive: true });
await mkdir(maps, { recursive: true });

const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: [entryPoint],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2020', 'chrome90', 'firefox90', 'safari15'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  alias: {
    react: 'preact/compat',
    'react-dom': 'preact/compat',
    'react-dom/client': 'preact/compat/client',
  },
  minify: true,
  // Maps without the sourceMappingURL comment; moved out of dist/ below.
  sourcemap: 'external',
  outdir: assets,
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  loader: { '.svg': 'file' },
  // React picks its production build from this; it is also smaller.
  define: { 'process.env.NODE_ENV': '"production"' },
  metafile: true,
  logLevel: 'warning',
});

// Find the outputs of our entry point in the metafile rather than guessing names.
const [jsPath, jsMeta] = Object.entries(result.metafile.outputs).find(
  ([, meta]) => meta.entryPoint === entryPoint,
);
const cssPath = jsMeta.cssBundle;
if (!cssPath) throw new Error('esbuild produced no CSS bundle for ' + entryPoint);

// The favicon is not imported by any code, so copy it with a content hash
// ourselves. Declaring it also stops browsers asking for /favicon.ico.
async function emitHashed(sourcePath) {
  const bytes = await readFile(join(root, sourcePath));
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 8).toUpperCase();
  const ext = extname(sourcePath);
  const outputPath = join('dist', 'assets', `${basename(sourcePath, ext)}-${hash}${ext}`);
  await writeFile(join(root, outputPath), bytes);
  return outputPath;
}
const faviconPath = await emitHashed('src/icons/favicon.svg');

const url = (outputPath) => '/' + relative(dist, join(root, outputPath)).split('\\').join('/');

const indexHtml = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>todopy</title>
<link rel="icon" type="image/svg+xml" href="${url(faviconPath)}">
<link rel="stylesheet" href="${url(cssPath)}">
<script type="module" src="${url(jsPath)}"></script>
</head>
<body>
<div id="root"></div>
</body>
</html>
`;
await writeFile(join(dist, 'index.html'), indexHtml);

// The service worker (src/sw.js), at dist/sw.js: it must be served from the
// root (/sw.js) to control the page at /. It keeps the page and every asset
// the page names; its VERSION changes whenever they do, which replaces it.
const svgs = Object.keys(result.metafile.outputs).filter((p) => p.endsWith('.svg'));
const shell = ['/', url(jsPath), url(cssPath), url(faviconPath), ...svgs.map(url)];
const version = createHash('sha256').update(shell.join('\n')).digest('hex').slice(0, 12);
await writeFile(
  join(dist, 'sw.js'),
  `const SHELL = ${JSON.stringify(shell)};\nconst VERSION = '${version}';\n` + (await readFile(join(root, 'src/sw.js'), 'utf8')),
);

// Source maps leave dist/ (the server serves only dist/).
for (const name of await readdir(assets)) {
  if (name.endsWith('.map')) await rename(join(assets, name), join(maps, name));
}

// Precompress every asset once, at the highest levels.
for (const name of await readdir(assets)) {
  const bytes = await readFile(join(assets, name));
  await writeFile(join(assets, name + '.gz'), gzipSync(bytes, { level: 9 }));
  await writeFile(
    join(assets, name + '.br'),
    brotliCompressSync(bytes, {
      params: { [zlib.BROTLI_PARAM_QUALITY]: 11, [zlib.BROTLI_PARAM_SIZE_HINT]: bytes.length },
    }),
  );
}

// Report sizes: what travels over the wire.
const kib = (n) => (n / 1024).toFixed(1) + ' KiB';
for (const path of [jsPath, cssPath]) {
  const full = join(root, path);
  const [raw, gz, br] = await Promise.all([full, full + '.gz', full + '.br'].map((p) => readFile(p)));
  console.log(`${url(path)}  ${kib(raw.length)}  (gzip ${kib(gz.length)}, brotli ${kib(br.length)})`);
}
console.log('/index.html');
