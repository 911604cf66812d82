/**
 * Spawning the real CLI (bin/chunked-backup, the built dist/) for end-to-end tests.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"

export const BIN = fileURLToPath(new URL("../../bin/chunked-backup", import.meta.url))

export interface CliResult {
  readonly code: number | null
  /** the signal that ended it, when one did */
  readonly signal?: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

export interface RunningCli {
  readonly child: ChildProcess
  readonly result: Promise<CliResult>
}

/**
 * `input`: bytes piped to the CLI's standard input (none: stdin is closed);
 * `prefix`: a command that runs it, e.g. `ip netns exec NAME`.
 */
export const startCli = (
  args: ReadonlyArray<string>,
  env: Record<string, string> = {},
  input?: Uint8Array,
  prefix: ReadonlyArray<string> = []
): RunningCli => {
  const argv = [...prefix, process.execPath, BIN, ...args]
  const child = spawn(argv[0]!, argv.slice(1), {
    env: { ...process.env, ...env },
    stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"]
  })
  if (input !== undefined) {
    // A CLI that stops reading early (a refused size) closes the pipe: that is not the test's failure.
    child.stdin!.on("error", () => {})
    child.stdin!.end(input)
  }
  let stdout = ""
  let stderr = ""
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d))
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d))
  const result = new Promise<CliResult>((resolve) => child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr })))
  return { child, result }
}

/** Runs the CLI to completion. */
export const cli = (args: ReadonlyArray<string>, env: Record<string, string> = {}, input?: Uint8Array, prefix: ReadonlyArray<string> = []) =>
  Effect.promise(() => startCli(args, env, input, prefix).result)
