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

export interface ProcessOptions {
  readonly cwd?: string
  /** the whole environment (default: this process's) */
  readonly env?: NodeJS.ProcessEnv
  /** bytes piped to standard input (none: stdin is closed) */
  readonly input?: Uint8Array
  /** SIGKILL after this many ms */
  readonly timeout?: number
}

/**
 * Starts `argv` without blocking this process: a spawnSync of a minute
 * starves vitest's worker of its event loop, and its RPC times out.
 */
export const startProcess = (argv: ReadonlyArray<string>, options: ProcessOptions = {}): RunningCli => {
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"]
  })
  if (options.input !== undefined) {
    // A child that stops reading early (a refused size) closes the pipe: that is not the test's failure.
    child.stdin!.on("error", () => {})
    child.stdin!.end(options.input)
  }
  const timer = options.timeout === undefined ? undefined : setTimeout(() => child.kill("SIGKILL"), options.timeout)
  let stdout = ""
  let stderr = ""
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d))
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d))
  const result = new Promise<CliResult>((resolve) =>
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  )
  return { child, result }
}

/** Runs `argv` to completion. */
export const runProcess = (argv: ReadonlyArray<string>, options: ProcessOptions = {}) => startProcess(argv, options).result

/**
 * `input`: bytes piped to the CLI's standard input (none: stdin is closed);
 * `prefix`: a command that runs it, e.g. `ip netns exec NAME`.
 */
export const startCli = (
  args: ReadonlyArray<string>,
  env: Record<string, string> = {},
  input?: Uint8Array,
  prefix: ReadonlyArray<string> = []
): RunningCli =>
  startProcess([...prefix, process.execPath, BIN, ...args], { env: { ...process.env, ...env }, ...(input === undefined ? {} : { input }) })

/** Runs the CLI to completion. */
export const cli = (args: ReadonlyArray<string>, env: Record<string, string> = {}, input?: Uint8Array, prefix: ReadonlyArray<string> = []) =>
  Effect.promise(() => startCli(args, env, input, prefix).result)
