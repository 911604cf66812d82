/**
 * Starts the bundled CLI (dist/cli.cjs) with V8's code cache. Compiling the
 * 3.8 MB bundle and the functions a command runs took about 0.1 s of every
 * command's 0.25 s start; with the cache V8 keeps from an earlier run of the
 * same command, it takes a few milliseconds. The cache is one file per
 * command in `dist/.cache/`, written once (again when V8 refuses it, as
 * after a rebuild or a Node upgrade); where that cannot be written, the CLI
 * runs as it would without.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { Script } from "node:vm"
import { COMMAND_NAMES } from "./commandNames.js"

// Bundled into dist/cli.mjs, beside the CLI's own bundle.
const bundle = fileURLToPath(new URL("./cli.cjs", import.meta.url))
const cacheDir = join(dirname(bundle), ".cache")
// The command decides what runs, so what is worth caching; anything else (help, a typo) shares one file.
const command = process.argv.slice(2).find((arg) => COMMAND_NAMES.includes(arg)) ?? "other"
const cacheFile = join(cacheDir, `cli-${command}.bin`)

const readCache = () => {
  try {
    return readFileSync(cacheFile)
  } catch {
    return undefined
  }
}

const cachedData = readCache()
// CommonJS's own wrapper, so the bundle sees require, module and __filename as it would.
const wrapped = `(function (exports, require, module, __filename, __dirname) {${readFileSync(bundle, "utf8")}\n})`
const script = new Script(wrapped, { filename: bundle, ...(cachedData === undefined ? {} : { cachedData }) })
if (cachedData === undefined || script.cachedDataRejected === true) {
  // At exit, with the functions this command compiled; written aside and renamed, so two runs at once do not mix.
  process.once("exit", () => {
    try {
      mkdirSync(cacheDir, { recursive: true })
      const temp = `${cacheFile}.${process.pid}`
      writeFileSync(temp, script.createCachedData())
      renameSync(temp, cacheFile)
    } catch {
      // A read-only installation: no cache.
    }
  })
}
const module = { exports: {} }
;(script.runInThisContext() as (...args: Array<unknown>) => void).call(module.exports, module.exports, createRequire(bundle), module, bundle, dirname(bundle))
