/**
 * Proof from outside: the package as `npm pack` makes it, installed into a
 * fresh project next to that project's own `effect`. There the examples
 * (examples/) typecheck against the installed types and run: a custom
 * backend passes the kit's conformance suite under vitest, and a program
 * backs up from a Stream and restores to a Stream with progress as Streams,
 * then exits by itself. The installed CLI backs up and restores too.
 *
 * Why the third-party native addons are copied: better-sqlite3 compiles
 * from source here for two minutes. The project pins the same versions as
 * this repository, whose own install built them; the package's own install
 * script (native/, our addons) runs for real.
 */
import { describe, expect, it } from "vitest"
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { runProcess, type CliResult } from "../support/cli.js"

const root = fileURLToPath(new URL("../..", import.meta.url))
const ours = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { devDependencies: Record<string, string>; dependencies: Record<string, string> }
const versionOf = (name: string) => (JSON.parse(readFileSync(join(root, "node_modules", name, "package.json"), "utf8")) as { version: string }).version

// The nested vitest must not think it runs inside this one.
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("VITEST") && key !== "NODE_OPTIONS"))

const run = (command: string, args: ReadonlyArray<string>, cwd: string, timeout = 240_000) =>
  runProcess([command, ...args], { cwd, env: cleanEnv, timeout })

const ok = (result: CliResult, what: string) => {
  expect(result.code, `${what}\n${result.stdout}\n${result.stderr}`).toBe(0)
  return result
}

describe("the packed package, installed into a fresh project", () => {
  it("typechecks and runs the examples, passes the kit's suite, and its CLI works", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cb-packed-"))
    try {
      const packed = ok(await run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", dir], root), "npm pack")
      const tarball = join(dir, (JSON.parse(packed.stdout) as Array<{ filename: string }>)[0]!.filename)
      const app = join(dir, "app")
      cpSync(join(root, "examples"), app, { recursive: true })
      writeFileSync(
        join(app, "package.json"),
        JSON.stringify({
          name: "app",
          private: true,
          type: "module",
          // The project's own effect, at the version this repository tests with: the package must use it, not a copy.
          dependencies: { "chunked-backup": `file:${tarball}`, effect: ours.devDependencies["effect"], "@effect/platform-node": ours.devDependencies["@effect/platform-node"] },
          devDependencies: Object.fromEntries(["@effect/vitest", "vitest", "typescript", "@types/node"].map((name) => [name, ours.devDependencies[name]])),
          overrides: { "better-sqlite3": versionOf("better-sqlite3"), "zstd-napi": versionOf("zstd-napi") },
          allowScripts: { [`file:${tarball}`]: true }
        })
      )
      writeFileSync(
        join(app, "tsconfig.json"),
        JSON.stringify({
          compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", lib: ["ES2022"], types: ["node"], strict: true, exactOptionalPropertyTypes: true, skipLibCheck: true, outDir: "out" },
          include: ["*.ts"]
        })
      )
      ok(await run("npm", ["install", "--ignore-scripts", "--prefer-offline", "--no-audit", "--no-fund"], app), "npm install")
      ok(await run("npm", ["rebuild", "chunked-backup"], app), "the package's install script")
      for (const addon of ["better-sqlite3", "zstd-napi"]) cpSync(join(root, "node_modules", addon, "build"), join(app, "node_modules", addon, "build"), { recursive: true })
      expect(existsSync(join(app, "node_modules/chunked-backup/native/build/Release/bz2.node"))).toBe(true)
      // One effect in the tree: the project's.
      expect(readdirSync(join(app, "node_modules/chunked-backup")).includes("node_modules")).toBe(false)

      ok(await run(join(app, "node_modules/.bin/tsc"), ["-p", "."], app), "tsc on the examples")
      const example = ok(await run(process.execPath, ["out/stream-backup.js", join(dir, "store")], app, 60_000), "examples/stream-backup.ts")
      expect(example.stdout).toMatch(/restored [0-9a-f-]+: the same 25165824 bytes/)
      expect(example.stderr).toContain("backup 100 %")
      const suite = ok(await run(join(app, "node_modules/.bin/vitest"), ["run", "map-store.test.ts"], app), "the conformance suite on the example backend")
      expect((suite.stdout + suite.stderr).replace(/\x1b\[[0-9;]*m/g, "")).toMatch(/Tests\s+\d+ passed \(\d+\)/)

      const cli = join(app, "node_modules/.bin/chunked-backup")
      expect(ok(await run(cli, ["--help"], app), "chunked-backup --help").stdout).toContain("chunked-backup 0.1.0")
      const volume = Buffer.alloc(3 * 1024 * 1024 + 7, 0)
      for (let i = 0; i < volume.length; i += 4096) volume[i] = i % 251
      writeFileSync(join(app, "volume.img"), volume)
      const made = ok(await run(cli, ["--repo", "repo", "--json", "backup", "volume.img"], app), "chunked-backup backup")
      const id = (JSON.parse(made.stdout) as { id: string }).id
      ok(await run(cli, ["--repo", "repo", "restore", id, "restored.img"], app), "chunked-backup restore")
      expect(readFileSync(join(app, "restored.img")).equals(volume)).toBe(true)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 300_000)
})
