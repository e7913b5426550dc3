// Builds ../mixer.html (one self-contained document, shipped in the wheel) and, when the repository's tests are
// beside it, the browser-test host's bridge script (tests/mixer/harness/web/host.js).
// Deterministic: same sources and lockfile -> same bytes. `--check` fails if a committed file differs.
import { build } from "esbuild";
import { readFile, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { createHash } from "node:crypto";

const checkOnly = process.argv.includes("--check");
const here = new URL(".", import.meta.url);
const path = (p) => new URL(p, here).pathname;

// zod re-exports every locale as a namespace that nothing here reads; keep English only (~260 KB less).
const englishOnlyZod = {
  name: "zod-english-only",
  setup(b) {
    b.onResolve({ filter: /\/locales\/index\.js$/ }, (args) =>
      args.importer.includes("/node_modules/zod/") ? { path: "zod-locales", namespace: "mixer" } : undefined,
    );
    b.onLoad({ filter: /^zod-locales$/, namespace: "mixer" }, () => ({
      contents: 'export { default as en } from "zod/v4/locales/en.js";',
      resolveDir: path("."),
      loader: "js",
    }));
  },
};

async function bundle(entry, format) {
  const result = await build({
    entryPoints: [path(entry)],
    bundle: true,
    minify: true,
    format,
    target: ["es2022", "chrome111", "safari16.4", "firefox115"],
    legalComments: "eof",
    charset: "utf8",
    write: false,
    nodePaths: [path("node_modules")],
    logLevel: "warning",
    plugins: [englishOnlyZod],
  });
  return result.outputFiles[0].text;
}

// A literal "</script" inside the inline script would end it early.
const inlineSafe = (js) => js.replace(/<\/(script)/gi, "<\\/$1").replace(/<!--/g, "<\\!--");

const [template, css, js] = await Promise.all([
  readFile(path("src/index.html"), "utf8"),
  readFile(path("src/style.css"), "utf8"),
  bundle("src/main.ts", "iife"),
]);
const html = template
  .replace("/*__MIXER_CSS__*/", () => css.trim())
  .replace("/*__MIXER_JS__*/", () => inlineSafe(js.trim()));
const HOST = "../../../../tests/mixer/harness/web/";
const outputs = { "../mixer.html": html };
if (existsSync(path(HOST + "host.ts"))) outputs[HOST + "host.js"] = await bundle(HOST + "host.ts", "iife");

if (checkOnly) {
  // CI: the committed files must be exactly what these sources build.
  const stale = [];
  for (const [file, text] of Object.entries(outputs)) {
    if (!existsSync(path(file)) || (await readFile(path(file), "utf8")) !== text) stale.push(file);
  }
  if (stale.length) {
    console.error(`out of date (run npm run build): ${stale.join(", ")}`);
    process.exit(1);
  }
  console.log("built files match their sources");
} else {
  for (const [file, text] of Object.entries(outputs)) await writeFile(path(file), text);
  for (const [file, text] of Object.entries(outputs)) {
    const sha = createHash("sha256").update(text).digest("hex").slice(0, 16);
    console.log(`${file} ${Buffer.byteLength(text)} bytes sha256:${sha}`);
  }
}
