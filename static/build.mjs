// Bundles the front end into dist/:
//   dist/assets/main-<hash>.js    (+ .map)   React app, minified ES module
//   dist/assets/main-<hash>.css   (+ .map)   todomvc-app-css + src/app.css
//   dist/assets/*-<hash>.svg                 images the CSS refers to, favicon
//   dist/index.html                          links the hashed files
// Hashed names let the server cache /assets/* forever; index.html must not be
// cached. No inline script or style anywhere: the server's CSP forbids them.
//
// Usage: node build.mjs   (npm run build)

import * as esbuild from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, 'dist');
const assets = join(dist, 'assets');
const entryPoint = 'src/main.jsx';

// Start clean so stale hashed files never pile up.
await rm(dist, { recursive: true, force: true });
await mkdir(assets, { recursive: true });

const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: [entryPoint],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2020', 'chrome90', 'firefox90', 'safari15'],
  jsx: 'automatic',
  minify: true,
  sourcemap: 'linked',
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

// Report sizes; gzip is roughly what travels over the wire.
for (const path of [jsPath, cssPath]) {
  const bytes = await readFile(join(root, path));
  const kib = (n) => (n / 1024).toFixed(1) + ' KiB';
  console.log(`${url(path)}  ${kib(bytes.length)}  (gzip ${kib(gzipSync(bytes, { level: 9 }).length)})`);
}
console.log('/index.html');
