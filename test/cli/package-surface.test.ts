/**
 * The package as another project sees it, by name through its `exports`
 * map (Node's self-reference): the library's programs, services and layers
 * are there; internals are not, and nothing under dist/ is reachable.
 */
import { describe, expect, it } from "vitest"
import { spawnSync } from "node:child_process"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"

const root = fileURLToPath(new URL("../..", import.meta.url))

/** Runs an ES module snippet from the package root, where "chunked-backup" names this package. */
const evaluate = (code: string) => spawnSync(process.execPath, ["--input-type=module", "-e", code], { cwd: root, encoding: "utf8" })

describe("the package's public surface", () => {
  it("exports the programs, services and layers; not the helpers only the implementation needs", () => {
    const run = evaluate(`const m = await import("chunked-backup"); console.log(JSON.stringify(Object.keys(m)))`)
    expect(run.status, run.stderr).toBe(0)
    const names = new Set(JSON.parse(run.stdout) as Array<string>)
    for (const name of ["backup", "restore", "verify", "deleteBackup", "cleanup", "CodecPool", "layerCodecPool", "ObjectStore", "make", "BackupCatalog",
      "layerPosix", "layerMemory", "layerSwift", "layerS3", "layerSqliteCatalog", "layerRetry", "fileSource", "streamSource", "progressStream"]) {
      expect(names.has(name), name).toBe(true)
    }
    for (const internal of ["checkName", "utcStamp", "aroundEach", "seededRandom", "withoutLocalPaths", "makeProgress", "claim", "holdLease",
      "leaseExpired", "recordedAlgorithm", "decompressionFailed", "openObject", "prepareObject"]) {
      expect(names.has(internal), internal).toBe(false)
    }
  })

  it("names follow one convention: make* and layer* are functions; make* gives an Effect, layer* a Layer", () => {
    const run = evaluate(`
      const m = await import("chunked-backup")
      const { Effect, Layer } = await import("effect")
      const wrong = Object.keys(m).filter((k) => /^(make|layer)[A-Z]/.test(k) && typeof m[k] !== "function")
      const effects = [m.makeMemory(), m.makeMemoryCatalog(), m.makePosix({ root: "/tmp/x" }), m.makeCodecPool()].map(Effect.isEffect)
      const layers = [m.layerMemory(), m.layerMemoryCatalog(), m.layerCodecPool(), m.layerTracing(), m.layerRetry(), m.layerSwiftConfig(), m.layerS3Config()].map(Layer.isLayer)
      console.log(JSON.stringify({ wrong, effects, layers }))`)
    expect(run.status, run.stderr).toBe(0)
    expect(JSON.parse(run.stdout)).toEqual({ wrong: [], effects: [true, true, true, true], layers: [true, true, true, true, true, true, true] })
  })

  it("every export of both entry points has a doc comment", () => {
    const entries = ["src/index.ts", "src/testing/index.ts"].map((entry) => join(root, entry))
    const program = ts.createProgram(entries, { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022 })
    const checker = program.getTypeChecker()
    const undocumented = entries.flatMap((entry) => {
      const module = checker.getSymbolAtLocation(program.getSourceFile(entry)!)!
      return checker.getExportsOfModule(module).flatMap((exported) => {
        const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported
        return symbol.getDocumentationComment(checker).length === 0 ? [exported.name] : []
      })
    })
    expect(undocumented).toEqual([])
  })

  it("deep imports into dist/ are refused", () => {
    const run = evaluate(`await import("chunked-backup/dist/src/cli/run.js")`)
    expect(run.status).not.toBe(0)
    expect(run.stderr).toContain("ERR_PACKAGE_PATH_NOT_EXPORTED")
  })
})
