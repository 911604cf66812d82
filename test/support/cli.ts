/**
 * Spawning the real CLI (bin/chunked-backup, the built dist/) for end-to-end tests.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"

export const BIN = fileURLToPath(new URL("../../bin/chunked-backup", import.meta.url))

export interface CliResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

export interface RunningCli {
  readonly child: ChildProcess
  readonly result: Promise<CliResult>
}

/** `input`: bytes piped to the CLI's standard input (none: stdin is closed). */
export const startCli = (args: ReadonlyArray<string>, env: Record<string, string> = {}, input?: Uint8Array): RunningCli => {
  const child = spawn(process.execPath, [BIN, ...args], {
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
  const result = new Promise<CliResult>((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })))
  return { child, result }
}

/** Runs the CLI to completion. */
export const cli = (args: ReadonlyArray<string>, env: Record<string, string> = {}, input?: Uint8Array) =>
  Effect.promise(() => startCli(args, env, input).result)
