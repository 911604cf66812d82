/**
 * Help as a terminal, a pipe and NO_COLOR / TERM=dumb see it: ANSI styles
 * only on a terminal that wants them (a pty through `script`).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import { BIN, cli } from "../support/cli.js"

const ESC = "\x1b["
const hasScript = spawnSync("script", ["--version"]).status === 0

/** `chunked-backup --help` on a pseudo-terminal, with `env` added. */
const onTerminal = (env: Record<string, string>) =>
  spawnSync("script", ["-qec", `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} --help`, "/dev/null"], {
    env: { ...process.env, NO_COLOR: "", ...env },
    encoding: "utf8"
  }).stdout

describe("CLI help and colour", () => {
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

  it.skipIf(!hasScript)("on a terminal: styled, but not with NO_COLOR or TERM=dumb", () => {
    expect(onTerminal({ TERM: "xterm-256color" })).toContain(ESC)
    expect(onTerminal({ TERM: "xterm-256color", NO_COLOR: "1" })).not.toContain(ESC)
    expect(onTerminal({ TERM: "dumb" })).not.toContain(ESC)
  })
})
