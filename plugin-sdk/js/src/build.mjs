#!/usr/bin/env node
/**
 * @file Builds a Tessera JavaScript plugin into a WebAssembly component.
 *
 *     node tessera/build.mjs [DIR] [--out FILE.wasm] [--wit PATH]
 *
 * DIR (default: the current directory) holds `plugin.js`, an ES module or a
 * CommonJS one (an Auth0 Action as it is: `exports.onExecutePostLogin = async
 * (event, api) => {…}`), and `node_modules` with `componentize-qjs` and
 * `esbuild` (else they are looked up beside this script). The steps:
 *
 * 1. load `plugin.js` in Node to find its stage functions, pick the WIT
 *    world (both stages → `plugin`, one → `credentials-exchange` or
 *    `authorize`), and refuse Auth0 `api` members Tessera does not have;
 * 2. write the entry module `DIR/.tessera/entry.js`, which wraps the plugin
 *    with the runtime facade (`index.js`, next to this script), and the WIT
 *    world `DIR/.tessera/wit/`: the stage world plus `tessera:cache` and
 *    `tessera:egress` (`fetch`);
 * 3. bundle the entry, the plugin and what it imports into one ES module
 *    with esbuild, `DIR/.tessera/bundle.js`, lowering `async`/`await` to
 *    generators over the global `Promise`, which `jobs.js` makes a promise
 *    whose jobs the facade runs before the call returns (QuickJS's own job
 *    queue never runs in a synchronous export);
 * 4. compile with componentize-qjs (QuickJS, non-async runtime) and write the
 *    component (default `DIR/plugin.wasm`).
 *
 * The WIT comes from `--wit DIR` (holding `plugin.wit`, `cache.wit` and
 * `egress.wit`), else `wit/` next to this script (a vendored SDK), else the
 * repository's `wit/0.2.0/`, `wit/cache/0.1.0/` and `wit/egress/0.1.0/`
 * (this script in `plugin-sdk/js/src/`): `tessera:plugin@0.2.0`,
 * `tessera:cache@0.1.0` and `tessera:egress@0.1.0`.
 */

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

import { STAGES, UNSUPPORTED } from "./index.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const HOST_IMPORT = "tessera:plugin/host@0.2.0";
const PLUGIN_PACKAGE = "tessera:plugin@0.2.0";
const CACHE_IMPORT = "tessera:cache/store@0.1.0";
const EGRESS_IMPORT = "tessera:egress/http@0.1.0";

/** A failure to report as is, optionally at a line of `plugin.js`. */
export class BuildError extends Error {
  /**
   * @param {string} message
   * @param {number} [line] 1-based line of the plugin source
   */
  constructor(message, line) {
    super(message);
    this.line = line;
  }
}

const lineOf = (source, index) => source.slice(0, index).split("\n").length;

/**
 * Blanks comments and quoted strings (keeping lengths and line breaks) so
 * that a search for a keyword finds only code. Template literals are kept.
 */
function codeOnly(text) {
  return text.replace(
    /`(?:\\[\s\S]|[^`\\])*`|\/\/[^\n]*|\/\*[\s\S]*?\*\/|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"/g,
    (match) => (match.startsWith("`") ? match : match.replace(/[^\n]/g, " ")),
  );
}

/**
 * Refuses a use of an Auth0 `api` member that Tessera does not have
 * (`api.redirect`, `api.multifactor`, …), at its line, saying what to use
 * instead.
 */
function refuseUnsupported(source) {
  const members = Object.keys(UNSUPPORTED).join("|");
  const found = codeOnly(source).match(new RegExp(`\\bapi\\s*\\??\\.\\s*(${members})\\b`));
  if (found !== null) {
    throw new BuildError(
      `uses api.${found[1]}, which Tessera does not have: ${UNSUPPORTED[found[1]]}`,
      lineOf(source, found.index),
    );
  }
}

/**
 * Finds the stage functions of a loaded plugin module.
 *
 * @param {string} source the text of `plugin.js`
 * @param {Record<string, unknown>} plugin the module, as loaded by Node
 * @returns {{world: string, stages: {world: string, name: string}[]}} the
 *   WIT world, and each stage's function name
 * @throws {BuildError} for no stage function, a stage defined twice, a stage
 *   that is not a function or is a generator, or an Auth0 `api` member
 *   Tessera does not have
 */
export function analyze(source, plugin) {
  const stages = [];
  for (const stage of STAGES) {
    const found = stage.names.filter((name) => plugin[name] !== undefined);
    if (found.length > 1) {
      throw new BuildError(
        `defines both ${found.join(" and ")}; keep one`,
        lineOf(source, source.search(`\\b${found[1]}\\b`)),
      );
    }
    if (found.length === 0) continue;
    const [name] = found;
    if (typeof plugin[name] !== "function") {
      throw new BuildError(`exports ${name}, but it is a ${typeof plugin[name]}, not a function`);
    }
    if (Object.prototype.toString.call(plugin[name]).endsWith("GeneratorFunction]")) {
      throw new BuildError(`${name} is a generator function; export a plain or async function`);
    }
    stages.push({ world: stage.world, name });
  }
  if (stages.length === 0) {
    const expected = STAGES.map((s) => `${s.names[0]}(event, api) (or ${s.names[1]})`).join(" and/or ");
    throw new BuildError(`exports no stage function: export ${expected}`);
  }
  refuseUnsupported(source);
  return { world: stages.length === STAGES.length ? "plugin" : stages[0].world, stages };
}

/** A path as a module specifier relative to `from`. */
function specifier(from, to) {
  const path = relative(from, to).split(sep).join("/");
  return path.startsWith(".") ? path : `./${path}`;
}

/** The WIT files: `tessera:plugin@0.2.0`'s, `tessera:cache@0.1.0`'s and `tessera:egress@0.1.0`'s. */
function findWit(option) {
  const at = (plugin, cache, egress) => ({
    plugin: join(plugin, "plugin.wit"),
    cache: join(cache, "cache.wit"),
    egress: join(egress ?? cache, "egress.wit"),
  });
  if (option !== undefined) {
    const given = at(resolve(option), resolve(option), resolve(option));
    for (const file of Object.values(given)) {
      if (!existsSync(file)) throw new BuildError(`--wit ${option}: no ${file}`);
    }
    return given;
  }
  const repository = join(HERE, "..", "..", "..", "wit");
  const candidates = [
    at(join(HERE, "wit"), join(HERE, "wit")),
    at(join(repository, "0.2.0"), join(repository, "cache", "0.1.0"), join(repository, "egress", "0.1.0")),
  ];
  const found = candidates.find((wit) => Object.values(wit).every((file) => existsSync(file)));
  if (found === undefined) {
    throw new BuildError(`no WIT found at ${candidates.map((c) => dirname(c.plugin)).join(" or ")}; pass --wit DIR`);
  }
  return found;
}

/**
 * Writes the WIT folder of the build: a world of the stage's name that
 * includes `tessera:plugin`'s and imports `tessera:cache` and
 * `tessera:egress`, with the packages under `deps/`.
 */
function writeWit(folder, wit) {
  rmSync(folder, { recursive: true, force: true });
  for (const [name, file] of Object.entries(wit)) {
    mkdirSync(join(folder, "deps", name), { recursive: true });
    writeFileSync(join(folder, "deps", name, basename(file)), readFileSync(file));
  }
  const worlds = STAGES.map((s) => s.world)
    .concat("plugin")
    .map((world) => {
      const [name, version] = PLUGIN_PACKAGE.split("@");
      return `world ${world} {\n    include ${name}/${world}@${version};\n    import ${CACHE_IMPORT};\n    import ${EGRESS_IMPORT};\n}\n`;
    });
  writeFileSync(
    join(folder, "world.wit"),
    [
      "// Generated by tessera/build.mjs on every build: the component's worlds.",
      "package tessera:js-plugin;",
      "",
      worlds.join("\n"),
    ].join("\n"),
  );
}

/** Loads a build tool from DIR's `node_modules`, else from beside this script. */
function loadTool(dir, name) {
  for (const base of [join(dir, "package.json"), fileURLToPath(import.meta.url)]) {
    try {
      const require = createRequire(base);
      return { module: require(name), version: require(`${name}/package.json`).version };
    } catch (error) {
      if (error.code !== "MODULE_NOT_FOUND") throw error;
    }
  }
  throw new BuildError(`${name} is not installed: run \`npm install\` in ${dir}`);
}

/** Loads the plugin in Node; reports a failure with its line, if known. */
async function loadPlugin(file) {
  const url = pathToFileURL(file).href;
  try {
    return await import(url);
  } catch (error) {
    // A syntax error from import() has no location; `node --check` prints it.
    const stack =
      error instanceof SyntaxError
        ? spawnSync(process.execPath, ["--check", file], { encoding: "utf8" }).stderr
        : String(error?.stack ?? "");
    const escaped = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    const at = stack.match(new RegExp(`(?:${escaped(url)}|${escaped(file)}):(\\d+)`));
    const commonjs = /\b(exports|require|module) is not defined in ES module scope/.test(String(error?.message));
    throw new BuildError(
      `could not be loaded: ${error?.name ?? "Error"}: ${error?.message ?? error}` +
        (commonjs ? '; plugin.js is CommonJS: remove "type": "module" from its package.json' : ""),
      at ? Number(at[1]) : undefined,
    );
  }
}

/** Turns componentize-qjs's failure into a short explanation. */
function compileError(error) {
  const message = String(error?.message ?? error);
  const host = message.match(/unknown import: `tessera:plugin\/host@[^#]*#([\w-]+)`/);
  if (host) {
    return new BuildError(
      `the module calls the host (${host[1]}) at its top level, which runs at build time: ` +
        "read config and secrets and log inside the stage functions",
    );
  }
  return new BuildError(`componentize-qjs failed: ${message.trim()}`);
}

/** Turns esbuild's failure into an error at the plugin's line. */
function bundleError(error, shown) {
  const [first] = error?.errors ?? [];
  if (first === undefined) return new BuildError(`esbuild failed: ${error?.message ?? error}`);
  const where = first.location ? `${shown(first.location.file)}:${first.location.line}: ` : "";
  return new BuildError(`${where}${first.text}`);
}

/**
 * Builds the plugin in `dir`.
 *
 * @param {{dir: string, out?: string, wit?: string, log?: (line: string) => void}} options
 * @returns {Promise<{out: string, world: string, bytes: number, seconds: number}>}
 * @throws {BuildError} with a message naming the file (and line) at fault
 */
export async function build({ dir, out, wit: witOption, log = (line) => console.log(line) }) {
  const started = performance.now();
  dir = resolve(dir);
  out = resolve(out ?? join(dir, "plugin.wasm"));
  const file = join(dir, "plugin.js");
  const shown = (path) => {
    const near = relative(process.cwd(), path);
    return near.startsWith("..") ? path : near || ".";
  };
  // Prefixes a BuildError's message with the file (and line) at fault.
  const located = (error, path) => {
    if (error instanceof BuildError) {
      error.message = `${shown(path)}${error.line ? `:${error.line}` : ""}: ${error.message}`;
    }
    return error;
  };

  if (!existsSync(file)) throw new BuildError(`${shown(file)}: not found (a plugin folder holds plugin.js)`);
  const wit = findWit(witOption);
  const componentize = loadTool(dir, "componentize-qjs");
  const esbuild = loadTool(dir, "esbuild");

  const source = readFileSync(file, "utf8");
  let plan;
  try {
    plan = analyze(source, await loadPlugin(file));
  } catch (error) {
    throw located(error, file);
  }
  const names = plan.stages.map((s) => `${s.world}: ${s.name}`).join(", ");
  log(`tessera build: plugin   ${shown(file)} (${names}) → world ${plan.world}`);

  const generated = join(dir, ".tessera");
  mkdirSync(generated, { recursive: true });
  rmSync(join(generated, "plugin.js"), { force: true });
  const entry = join(generated, "entry.js");
  const exported = STAGES.filter((stage) => plan.stages.some((s) => s.world === stage.world)).map((s) => s.export);
  const entrySource = [
    "// Generated by tessera/build.mjs on every build: the component's entry module.",
    "// jobs.js comes first: it installs the Promise whose jobs run during a call.",
    `import { drain } from "${specifier(generated, join(HERE, "jobs.js"))}";`,
    "// egress.js makes fetch a global, over the host's tessera:egress.",
    `import "${specifier(generated, join(HERE, "egress.js"))}";`,
    `import * as host from "${HOST_IMPORT}";`,
    `import * as cache from "${CACHE_IMPORT}";`,
    `import { wrap } from "${specifier(generated, join(HERE, "index.js"))}";`,
    `import * as plugin from "${specifier(generated, file)}";`,
    "",
    `export const { ${exported.join(", ")} } = wrap(plugin, host, { cache, drain });`,
    "",
  ].join("\n");
  writeFileSync(entry, entrySource);
  const witFolder = join(generated, "wit");
  writeWit(witFolder, wit);
  log(`tessera build: entry    ${shown(entry)}, WIT ${shown(witFolder)}`);

  const bundle = join(generated, "bundle.js");
  let bundled;
  try {
    const result = await esbuild.module.build({
      entryPoints: [entry],
      bundle: true,
      write: false,
      format: "esm",
      platform: "neutral",
      mainFields: ["module", "main"],
      external: ["tessera:*"],
      // QuickJS runs promise jobs only between calls, which a synchronous
      // export never reaches: async code becomes generators over the global
      // Promise (jobs.js), and top-level await cannot be lowered.
      supported: { "async-await": false, "async-generator": false, "for-await": false, "top-level-await": false },
      // Timers do not exist in a plugin call; bundled code that only names
      // them (promise-polyfill keeps a reference) must still load.
      banner: { js: "var setTimeout = globalThis.setTimeout, setInterval = globalThis.setInterval;" },
      outfile: bundle,
      logLevel: "silent",
    });
    bundled = result.outputFiles[0].text;
  } catch (error) {
    throw bundleError(error, shown);
  }
  writeFileSync(bundle, bundled);
  log(`tessera build: bundle   ${shown(bundle)} (esbuild ${esbuild.version}, async lowered)`);

  log(`tessera build: compile  componentize-qjs ${componentize.version}`);
  let component;
  try {
    ({ component } = await componentize.module.componentize({
      witPath: witFolder,
      jsSource: bundled,
      jsPath: bundle,
      moduleRoot: generated,
      world: plan.world,
      sync: true,
    }));
  } catch (error) {
    throw located(compileError(error), file);
  }
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, component);
  const seconds = (performance.now() - started) / 1000;
  log(
    `tessera build: wrote    ${shown(out)} (${(component.length / 1024 / 1024).toFixed(1)} MiB) in ${seconds.toFixed(1)} s`,
  );
  return { out, world: plan.world, bytes: component.length, seconds };
}

async function main() {
  let args;
  try {
    args = parseArgs({
      options: { out: { type: "string", short: "o" }, wit: { type: "string" }, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
    });
  } catch (error) {
    throw new BuildError(error.message);
  }
  if (args.values.help || args.positionals.length > 1) {
    console.log("usage: node tessera/build.mjs [DIR] [--out FILE.wasm] [--wit PATH]");
    process.exitCode = args.values.help ? 0 : 2;
    return;
  }
  await build({ dir: args.positionals[0] ?? ".", out: args.values.out, wit: args.values.wit });
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    console.error(`tessera build: error: ${error instanceof BuildError ? error.message : (error?.stack ?? error)}`);
    process.exitCode = 1;
  });
}
