#!/usr/bin/env node
/**
 * @file Builds a Tessera JavaScript plugin into a WebAssembly component.
 *
 *     node tessera/build.mjs [DIR] [--out FILE.wasm] [--wit PATH]
 *
 * DIR (default: the current directory) holds `plugin.js`, a `package.json`
 * with `"type": "module"`, and `node_modules/componentize-qjs`. The steps:
 *
 * 1. load `plugin.js` in Node to find its stage functions, and pick the WIT
 *    world: both stages → `plugin`, one → `credentials-exchange` or
 *    `authorize`;
 * 2. make `async` stage functions synchronous (see {@link analyze}): the
 *    component runs without an event loop;
 * 3. write the entry module `DIR/.tessera/entry.js`, which wraps the plugin
 *    with the runtime facade (`index.js`, next to this script);
 * 4. compile with componentize-qjs (QuickJS, non-async runtime) and write the
 *    component (default `DIR/plugin.wasm`).
 *
 * The WIT comes from `--wit`, else `wit/` next to this script (a vendored
 * SDK), else the repository's `wit/0.2.0/` (this script in
 * `plugin-sdk/js/src/`): `tessera:plugin@0.2.0`.
 */

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve, sep } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

import { STAGES } from "./index.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const HOST_IMPORT = "tessera:plugin/host@0.2.0";

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
 * Makes an `async` stage function synchronous in `source`.
 *
 * A component built with the non-async runtime never runs the JavaScript job
 * queue, so a Promise cannot settle during a call. An `async` function that
 * never awaits runs to its end when called, though, so removing the keyword
 * (replaced by spaces, to keep lines and columns) changes only that its
 * errors are thrown instead of rejected. One that awaits is refused.
 */
function desync(source, fn, name) {
  const kind = Object.prototype.toString.call(fn);
  if (kind.endsWith("GeneratorFunction]")) {
    throw new BuildError(`${name} is a generator function; export a plain function`);
  }
  if (kind !== "[object AsyncFunction]") return source;
  const text = Function.prototype.toString.call(fn);
  const at = source.indexOf(text);
  if (at === -1 || source.indexOf(text, at + 1) !== -1 || !text.startsWith("async")) {
    throw new BuildError(
      `${name} is async and its source could not be found to make it synchronous: declare it without async`,
    );
  }
  const awaitAt = codeOnly(text).search(/\bawait\b/);
  if (awaitAt !== -1) {
    throw new BuildError(
      `${name} uses await, but a Tessera plugin runs without an event loop, so a Promise never settles during a call. ` +
        "The host functions (event.secrets, event.config, logging) are synchronous: remove the awaits.",
      lineOf(source, at + awaitAt),
    );
  }
  return `${source.slice(0, at)}     ${source.slice(at + "async".length)}`;
}

/**
 * Finds the stage functions of a loaded plugin module and prepares its source.
 *
 * @param {string} source the text of `plugin.js`
 * @param {Record<string, unknown>} plugin the module, as loaded by Node
 * @returns {{world: string, stages: {world: string, name: string}[], source: string | null}}
 *   the WIT world, each stage's function name, and the source with `async`
 *   removed from stage functions (`null` if unchanged)
 * @throws {BuildError} for no stage function, a stage defined twice, a stage
 *   that is not a function, or an async stage function that awaits
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
    stages.push({ world: stage.world, name, fn: plugin[name] });
  }
  if (stages.length === 0) {
    const expected = STAGES.map((s) => `${s.names[0]}(event, api) (or ${s.names[1]})`).join(" and/or ");
    throw new BuildError(`exports no stage function: export ${expected}`);
  }
  let prepared = source;
  for (const { fn, name } of new Map(stages.map((s) => [s.fn, s])).values()) prepared = desync(prepared, fn, name);
  return {
    world: stages.length === STAGES.length ? "plugin" : stages[0].world,
    stages: stages.map(({ world, name }) => ({ world, name })),
    source: prepared === source ? null : prepared,
  };
}

/** Rewrites relative import specifiers of a module moved one folder down. */
function relocate(source) {
  return source.replace(/^(\s*(?:import|export)\b[^;'"]*?\bfrom\s*|\s*import\s*)(["'])(\.\.?\/)/gm, "$1$2../$3");
}

/** A path as a module specifier relative to `from`. */
function specifier(from, to) {
  const path = relative(from, to).split(sep).join("/");
  return path.startsWith(".") ? path : `./${path}`;
}

/** The deepest folder containing both paths. */
function commonRoot(a, b) {
  const left = a.split(sep);
  const right = b.split(sep);
  let i = 0;
  while (i < left.length && left[i] === right[i]) i++;
  return left.slice(0, i).join(sep) || sep;
}

function findWit(option) {
  if (option !== undefined) {
    if (!existsSync(option)) throw new BuildError(`--wit ${option}: no such file or folder`);
    return resolve(option);
  }
  const candidates = [join(HERE, "wit"), join(HERE, "..", "..", "..", "wit", "0.2.0")];
  const found = candidates.find((dir) => existsSync(join(dir, "plugin.wit")));
  if (found === undefined) throw new BuildError(`no WIT found at ${candidates.join(" or ")}; pass --wit PATH`);
  return found;
}

function loadComponentize(dir) {
  for (const base of [join(dir, "package.json"), fileURLToPath(import.meta.url)]) {
    try {
      const require = createRequire(base);
      const { componentize } = require("componentize-qjs");
      return { componentize, version: require("componentize-qjs/package.json").version };
    } catch (error) {
      if (error.code !== "MODULE_NOT_FOUND") throw error;
    }
  }
  throw new BuildError(`componentize-qjs is not installed: run \`npm install\` in ${dir}`);
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
    throw new BuildError(
      `could not be loaded: ${error?.name ?? "Error"}: ${error?.message ?? error}`,
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

/**
 * Builds the plugin in `dir`.
 *
 * @param {{dir: string, out?: string, wit?: string, log?: (line: string) => void}} options
 * @returns {Promise<{out: string, world: string, bytes: number, seconds: number}>}
 * @throws {BuildError} with a message naming the file (and line) at fault
 */
export async function build({ dir, out, wit, log = (line) => console.log(line) }) {
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
  const manifest = join(dir, "package.json");
  const type = existsSync(manifest) ? JSON.parse(readFileSync(manifest, "utf8")).type : undefined;
  if (type !== "module") throw new BuildError(`${shown(manifest)}: add "type": "module" (plugin.js is an ES module)`);
  const witPath = findWit(wit);
  const { componentize, version } = loadComponentize(dir);

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
  let pluginModule = file;
  rmSync(join(generated, "plugin.js"), { force: true });
  if (plan.source !== null) {
    pluginModule = join(generated, "plugin.js");
    writeFileSync(pluginModule, relocate(plan.source));
    log(`tessera build: sync     ${shown(pluginModule)} (plugin.js with the async keyword removed)`);
  }
  const entry = join(generated, "entry.js");
  const exported = STAGES.filter((stage) => plan.stages.some((s) => s.world === stage.world)).map((s) => s.export);
  const entrySource = [
    "// Generated by tessera/build.mjs on every build: the component's entry module.",
    `import * as host from "${HOST_IMPORT}";`,
    `import { wrap } from "${specifier(generated, join(HERE, "index.js"))}";`,
    `import * as plugin from "${specifier(generated, pluginModule)}";`,
    "",
    `export const { ${exported.join(", ")} } = wrap(plugin, host);`,
    "",
  ].join("\n");
  writeFileSync(entry, entrySource);
  log(`tessera build: entry    ${shown(entry)}`);

  log(`tessera build: compile  componentize-qjs ${version}, WIT ${shown(witPath)}`);
  let component;
  try {
    ({ component } = await componentize({
      witPath,
      jsSource: entrySource,
      jsPath: entry,
      moduleRoot: commonRoot(dir, HERE),
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
