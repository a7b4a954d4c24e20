// Measures what a first visit downloads before the app can start: the scripts and styles
// that dist/index.html loads directly (not the chunks loaded later), raw and gzipped.
// Run by `npm run build`; prints one line and writes dist/bundle-size.json.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const dist = new URL("../dist/", import.meta.url).pathname;
const html = readFileSync(join(dist, "index.html"), "utf8");
const referenced = [...html.matchAll(/(?:src|href)="\/(assets\/[^"]+\.(?:js|css))"/g)].map((m) => m[1]);

const files = referenced.map((path) => {
  const bytes = readFileSync(join(dist, path));
  return { path, bytes: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
});
const sum = (kind, field) => files.filter((f) => f.path.endsWith(kind)).reduce((n, f) => n + f[field], 0);
const report = {
  js: { bytes: sum(".js", "bytes"), gzip: sum(".js", "gzip") },
  css: { bytes: sum(".css", "bytes"), gzip: sum(".css", "gzip") },
  files,
};
writeFileSync(join(dist, "bundle-size.json"), JSON.stringify(report, null, 2) + "\n");
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
console.log(`initial JavaScript: ${kib(report.js.bytes)} (${kib(report.js.gzip)} gzipped); CSS: ${kib(report.css.bytes)} (${kib(report.css.gzip)} gzipped)`);
