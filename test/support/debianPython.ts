/**
 * A long-lived Debian `/usr/bin/python3` co-process for oracle tests.
 *
 * Debian's interpreter (not the pyenv `python3` first on PATH) is the one
 * with python3-zstd and Cinder's dist-packages. One process serves a whole
 * test file: each request is one line of JSON on its stdin, each answer one
 * line of JSON on its stdout, in order. That keeps property tests (many
 * runs, plus shrinking) at one interpreter start-up instead of one per run.
 *
 * The Python side is `handle(request)`, defined by the caller's source;
 * `decode` optionally replaces `json.loads` for the request line.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process"

export const DEBIAN_PYTHON = "/usr/bin/python3"

export class PythonError extends Error {
  override readonly name = "PythonError"
}

export interface PythonServer {
  /** Sends one request (a single line of JSON text) and resolves with the decoded answer. */
  readonly request: (line: string) => Promise<unknown>
  readonly close: () => Promise<void>
}

const loop = `
import json as _json, sys as _sys, traceback as _traceback
_decode = globals().get("decode", _json.loads)
for _line in _sys.stdin:
    try:
        _answer = {"ok": handle(_decode(_line))}
    except Exception as _e:
        _answer = {"error": "%s: %s" % (type(_e).__name__, _e), "trace": _traceback.format_exc()}
    _sys.stdout.write(_json.dumps(_answer) + "\\n")
    _sys.stdout.flush()
`

export const startPythonServer = (source: string): PythonServer => {
  // -I: isolated (no PYTHON* variables, no user site), so only Debian's own paths count.
  const child: ChildProcessWithoutNullStreams = spawn(DEBIAN_PYTHON, ["-I", "-c", source + "\n" + loop], {
    stdio: ["pipe", "pipe", "pipe"]
  })
  const pending: Array<{ resolve: (value: unknown) => void; reject: (error: Error) => void }> = []
  let stdout = ""
  let stderr = ""
  let dead: Error | undefined

  const failAll = (error: Error) => {
    dead ??= error
    for (const waiter of pending.splice(0)) waiter.reject(dead)
  }

  child.stdout.setEncoding("utf8")
  child.stdout.on("data", (chunk: string) => {
    stdout += chunk
    let newline: number
    while ((newline = stdout.indexOf("\n")) >= 0) {
      const line = stdout.slice(0, newline)
      stdout = stdout.slice(newline + 1)
      const waiter = pending.shift()
      if (waiter === undefined) {
        failAll(new PythonError(`unexpected output from python: ${line.slice(0, 200)}`))
        return
      }
      const answer = JSON.parse(line) as { ok?: unknown; error?: string; trace?: string }
      if (answer.error !== undefined) waiter.reject(new PythonError(`${answer.error}\n${answer.trace ?? ""}`))
      else waiter.resolve(answer.ok)
    }
  })
  child.stderr.setEncoding("utf8")
  child.stderr.on("data", (chunk: string) => {
    stderr += chunk
  })
  child.on("error", (e) => failAll(new PythonError(`cannot run ${DEBIAN_PYTHON}: ${e.message}`)))
  child.on("exit", (code, signal) =>
    failAll(new PythonError(`${DEBIAN_PYTHON} exited (code ${code}, signal ${signal}): ${stderr}`))
  )
  child.stdin.on("error", (e) => failAll(new PythonError(`writing to python failed: ${e.message}: ${stderr}`)))

  return {
    request: (line) =>
      new Promise((resolve, reject) => {
        if (dead !== undefined) return reject(dead)
        if (line.includes("\n")) return reject(new PythonError("a request must be a single line"))
        pending.push({ resolve, reject })
        child.stdin.write(line + "\n")
      }),
    close: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve()
        child.once("exit", () => resolve())
        child.stdin.end()
      })
  }
}
