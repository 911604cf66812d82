/**
 * Help as a terminal, a pipe and NO_COLOR / TERM=dumb see it: ANSI styles
 * only on a terminal that wants them (a pty through `script`).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { COMMAND_NAMES } from "../../src/cli/commandNames.js"
import { BIN, cli } from "../support/cli.js"
import { patternedVolume, withTempDir } from "../support/layers.js"

const ESC = "\x1b["
const hasScript = spawnSync("script", ["--version"]).status === 0

/** `chunked-backup --help` on a pseudo-terminal, with `env` added. */
const onTerminal = (env: Record<string, string>) =>
  spawnSync("script", ["-qec", `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} --help`, "/dev/null"], {
    env: { ...process.env, NO_COLOR: "", ...env },
    encoding: "utf8"
  }).stdout

describe("CLI help and colour", () => {
  it.live("the launcher knows every command by name (its code cache is kept per command)", () =>
    Effect.gen(function* () {
      const help = (yield* cli(["--help"])).stdout
      const commands = [...help.matchAll(/^ {2}- ([a-z-]+)/gm)].map((m) => m[1])
      expect(commands.length).toBeGreaterThan(5)
      expect([...COMMAND_NAMES].sort()).toEqual([...commands].sort())
    })
  )

  it.live("piped help has no ANSI escapes", () =>
    Effect.gen(function* () {
      const help = yield* cli(["--help"])
      expect(help.code).toBe(0)
      expect(help.stdout).toContain("chunked-backup")
      expect(help.stdout).not.toContain(ESC)
      const sub = yield* cli(["restore", "--help"])
      expect(sub.stdout).toContain("--no-verify-sha256")
      expect(sub.stdout).not.toContain(ESC)
    })
  )

  it.live("each command's help shows its defaults, the global options and store-URL examples, without filler lines", () =>
    Effect.gen(function* () {
      const backup = (yield* cli(["backup", "--help"])).stdout
      for (const words of ["default zlib", "default 52428800", "default 32768", "--repo <dir>", "--store <url>", "EXAMPLES", "swift+http://", "s3://"]) {
        expect(backup).toContain(words)
      }
      const top = (yield* cli(["--help"])).stdout
      for (const scheme of ["posix:", "swift://", "swift+http://", "s3://"]) expect(top).toContain(scheme)
      for (const command of ["backup", "restore", "verify", "list", "delete", "export-record", "import-record", "cleanup", "cancel", "show"]) {
        const help = (yield* cli([command, "--help"])).stdout
        expect(help, command).toContain("Global options")
        expect(help, command).toContain("EXAMPLES")
        for (const filler of ["A user-defined piece of text.", "A true or false value.", "An integer.", "This setting is optional."]) {
          expect(help, command).not.toContain(filler)
        }
      }
    })
  )

  it.skipIf(!hasScript)("on a terminal: styled, but not with NO_COLOR or TERM=dumb", () => {
    expect(onTerminal({ TERM: "xterm-256color" })).toContain(ESC)
    expect(onTerminal({ TERM: "xterm-256color", NO_COLOR: "1" })).not.toContain(ESC)
    expect(onTerminal({ TERM: "dumb" })).not.toContain(ESC)
  })

  it.live.skipIf(!hasScript)("the progress bar stays on one line of a 50-column terminal", () =>
    withTempDir((dir) =>
      Effect.sync(() => {
        writeFileSync(join(dir, "disk.img"), patternedVolume(6 * 1024 * 1024))
        const command = `stty cols 50; ${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} --repo ${JSON.stringify(join(dir, "repo"))} backup ${JSON.stringify(join(dir, "disk.img"))} --chunk-size 1048576 --compression bz2`
        const out = spawnSync("script", ["-qec", command, "/dev/null"], { env: { ...process.env, TERM: "xterm" }, encoding: "utf8" }).stdout
        // Every redraw (after a carriage return and an erase-line) fits in 49 columns.
        const redraws = out.split("\r").map((part) => part.replace(/\x1b\[[0-9;]*[A-Za-z]/g, "").replace(/\n.*$/s, ""))
        const bars = redraws.filter((text) => text.startsWith("backup "))
        expect(bars.length).toBeGreaterThan(0)
        for (const text of bars) expect(text.length).toBeLessThanOrEqual(49)
        expect(bars.at(-1)).toContain("100%")
      })
    )
  )

  it.live.skipIf(!hasScript)("the bar moves while one big bzip2 object compresses, with an ETA", () =>
    withTempDir((dir) =>
      Effect.sync(() => {
        // Letters of a small alphabet: bzip2 takes about a second or two over these 12 MiB.
        const volume = new Uint8Array(12 * 1024 * 1024)
        let x = 7
        for (let i = 0; i < volume.length; i++) volume[i] = 97 + ((x = (x * 1103515245 + 12345) >>> 0) >>> 16) % 16
        writeFileSync(join(dir, "disk.img"), volume)
        const command = `stty cols 100; ${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} --repo ${JSON.stringify(join(dir, "repo"))} backup ${JSON.stringify(join(dir, "disk.img"))} --chunk-size ${volume.length} --compression bz2`
        const out = spawnSync("script", ["-qec", command, "/dev/null"], { env: { ...process.env, TERM: "xterm" }, encoding: "utf8" }).stdout
        const bars = out.split("\r").map((part) => part.replace(/\x1b\[[0-9;]*[A-Za-z]/g, "").replace(/\n.*$/s, "")).filter((t) => t.startsWith("backup "))
        const percents = bars.map((text) => Number(/(\d+)%/.exec(text)?.[1]))
        // The only object is stored at the end, yet the bar went through values in between, each with an ETA.
        const between = bars.filter((_, i) => percents[i]! > 0 && percents[i]! < 100)
        expect(between.length, out).toBeGreaterThan(0)
        for (const text of between) expect(text).toMatch(/ETA \d+s/)
        expect(percents).toEqual([...percents].sort((a, b) => a - b))
      })
    )
  )
})
