/**
 * Real NBD servers for the tests: qemu-nbd and nbdkit on a Unix socket,
 * started for a scope and stopped by PID when it closes; qemu-img and
 * qemu-io to make and write images (writes through qemu-io are what a
 * dirty bitmap records).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import { readFileSync, rmSync } from "node:fs"
import { Effect } from "effect"

/** True when qemu-nbd and nbdkit are installed (CI installs them). */
export const haveNbdServers = spawnSync("qemu-nbd", ["--version"], { stdio: "ignore" }).status === 0 && spawnSync("nbdkit", ["--version"], { stdio: "ignore" }).status === 0

/** Runs a tool to completion; a failure is the test's. */
export const tool = (command: string, args: ReadonlyArray<string>) => {
  const r = spawnSync(command, args, { encoding: "utf8" })
  if (r.status !== 0) throw new Error(`${command} ${args.join(" ")}: exit ${r.status}: ${r.stderr}`)
  return r.stdout
}

/** qemu-io writes: each `write -P PATTERN OFFSET LENGTH` (or `write -z` for zeros), in one run. */
export const qemuWrite = (image: string, writes: ReadonlyArray<{ readonly at: number; readonly length: number; readonly pattern?: number | undefined }>) => {
  if (writes.length === 0) return
  const commands = writes.flatMap(({ at, length, pattern }) => ["-c", pattern === undefined ? `write -z ${at} ${length}` : `write -P ${pattern} ${at} ${length}`])
  tool("qemu-io", ["-f", "qcow2", ...commands, image])
}

export interface NbdServer {
  readonly uri: string
  readonly socket: string
  readonly child: ChildProcess
  /** SIGKILL now (a server that dies mid-backup). */
  readonly kill: () => void
}

/**
 * True once a socket at `path` is listening. Its file appears at bind(),
 * before listen(): a client connecting in between is refused, so waiting
 * for the file alone races the server. Linux lists listening Unix sockets
 * in /proc/net/unix with the __SO_ACCEPTCON flag (0x10000).
 */
export const listeningOn = (path: string) =>
  readFileSync("/proc/net/unix", "utf8").split("\n").some((line) => {
    const fields = line.trim().split(/\s+/)
    return fields[7] === path && (parseInt(fields[3] ?? "0", 16) & 0x10000) !== 0
  })

/** Servers still running: killed when the test process exits, should a timed-out test skip its finalizer (qemu-nbd has no exit-with-parent). */
const running = new Set<ChildProcess>()
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL")
})

/** Starts `command args…` that listens on `socket`, and waits for the socket. Stopped by PID at the end of the scope. */
const serve = (command: string, args: ReadonlyArray<string>, socket: string, exportName = "") =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      rmSync(socket, { force: true })
      const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"] })
      running.add(child)
      child.once("exit", () => running.delete(child))
      let stderr = ""
      child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d))
      for (let i = 0; i < 400 && !listeningOn(socket) && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 25))
      if (!listeningOn(socket)) throw new Error(`${command} did not start listening on ${socket}: ${stderr}`)
      const server: NbdServer = {
        uri: `nbd+unix:///${encodeURIComponent(exportName)}?socket=${socket}`,
        socket,
        child,
        kill: () => void child.kill("SIGKILL")
      }
      return server
    }),
    ({ child, socket }) =>
      Effect.promise(async () => {
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise((resolve) => child.once("exit", resolve))
          child.kill("SIGTERM")
          await exited
        }
        rmSync(socket, { force: true })
      })
  )

/** qemu-nbd exporting `image` read-only (and `bitmap` as qemu:dirty-bitmap:NAME) until the scope ends. */
export const qemuNbd = (image: string, socket: string, options: { readonly format?: string; readonly bitmap?: string; readonly exportName?: string } = {}) =>
  serve(
    "qemu-nbd",
    [
      "--read-only",
      "--persistent",
      "-f",
      options.format ?? "qcow2",
      "-k",
      socket,
      ...(options.bitmap === undefined ? [] : ["-B", options.bitmap]),
      ...(options.exportName === undefined ? [] : ["-x", options.exportName]),
      image
    ],
    socket,
    options.exportName ?? ""
  )

/** nbdkit with `plugin args…` (filters in `args` too) on `socket` until the scope ends. */
export const nbdkit = (socket: string, args: ReadonlyArray<string>) => serve("nbdkit", ["-f", "--exit-with-parent", "-U", socket, ...args], socket)
