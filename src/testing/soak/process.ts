/**
 * One CLI process of the soak (`node dist/cli.mjs ...`), as a user runs it:
 * arguments, environment, standard input fed at a chosen pace, standard
 * output hashed (a restore to `-`) and held back on request, so that a
 * backup or restore is surely still running when another process cancels or
 * kills it.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { createHash } from "node:crypto"
import { setTimeout as sleep } from "node:timers/promises"

export interface Finished {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  /** standard output as text (unless hashed) */
  readonly stdout: string
  /** sha256 and length of standard output, when hashed */
  readonly stdoutSha256?: string
  readonly stdoutBytes: number
  readonly stderr: string
}

export interface Running {
  readonly child: ChildProcess
  readonly finished: Promise<Finished>
  /** resolves at the first line the CLI writes on stderr (its first progress event), or when it ends */
  readonly started: Promise<void>
  /** lets standard output flow again after `holdStdout` */
  readonly resume: () => void
}

export interface SpawnOptions {
  readonly cli: string
  readonly args: ReadonlyArray<string>
  readonly env: Record<string, string>
  /** bytes for standard input, written `piece` bytes every `paceMs` (none: stdin is closed) */
  readonly input?: { readonly bytes: Uint8Array; readonly piece: number; readonly paceMs: number }
  readonly hashStdout?: boolean
  /** read no standard output until `resume`: a restore to `-` then blocks on its pipe */
  readonly holdStdout?: boolean
}

const feed = async (child: ChildProcess, input: NonNullable<SpawnOptions["input"]>, done: { value: boolean }) => {
  const stdin = child.stdin!
  // A CLI that stops reading (cancelled, killed) closes the pipe: that ends the feed, it is no failure.
  stdin.on("error", () => {})
  for (let at = 0; at < input.bytes.length && !done.value; at += input.piece) {
    const piece = input.bytes.subarray(at, at + input.piece)
    await new Promise<void>((resolve) => stdin.write(piece, () => resolve()))
    if (input.paceMs > 0) await sleep(input.paceMs)
  }
  stdin.end()
}

export const spawnCli = (options: SpawnOptions): Running => {
  const child = spawn(process.execPath, [options.cli, ...options.args], {
    env: { ...process.env, ...options.env },
    stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"]
  })
  const done = { value: false }
  let stdout = ""
  let stdoutBytes = 0
  let stderr = ""
  const hash = options.hashStdout === true ? createHash("sha256") : undefined
  child.stdout!.on("data", (d: Buffer) => {
    stdoutBytes += d.length
    if (hash !== undefined) hash.update(d)
    else stdout += d.toString("utf8")
  })
  if (options.holdStdout === true) child.stdout!.pause()
  let markStarted = () => {}
  const started = new Promise<void>((resolve) => (markStarted = resolve))
  child.stderr!.setEncoding("utf8").on("data", (d: string) => {
    stderr += d
    if (stderr.includes("\n")) markStarted()
  })
  const finished = new Promise<Finished>((resolve) =>
    child.on("close", (code, signal) => {
      done.value = true
      markStarted()
      resolve({ code, signal, stdout, stdoutBytes, stderr, ...(hash === undefined ? {} : { stdoutSha256: hash.digest("hex") }) })
    })
  )
  if (options.input !== undefined) void feed(child, options.input, done)
  return { child, finished, started, resume: () => child.stdout!.resume() }
}
