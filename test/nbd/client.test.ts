/**
 * The NBD client against real servers (nbdkit, qemu-nbd) on Unix sockets
 * and TCP, started by the tests and killed by PID: reads compared byte for
 * byte, block status of a qcow2 image and its dirty bitmap, and the ways a
 * connection fails (refused, unknown export, error replies, a server killed
 * mid-read, an interrupted read).
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Either, Fiber } from "effect"
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { connect, NBD_STATE_DIRTY, NBD_STATE_HOLE, NBD_STATE_ZERO, type NbdConnection } from "../../src/nbd/client.js"
import { listeningOn } from "../support/nbdServers.js"

const KiB = 1024
const MiB = 1024 * KiB
const children: Array<ChildProcess> = []
let dir = ""

/** Starts a server and waits for its socket (a path) to appear. */
const serve = async (command: string, args: ReadonlyArray<string>, socket: string) => {
  const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"] })
  children.push(child)
  let stderr = ""
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
  for (let waited = 0; !listeningOn(socket); waited += 10) {
    if (child.exitCode !== null || waited > 10_000) throw new Error(`${command} ${args.join(" ")} did not start: ${stderr}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return { child, stderr: () => stderr }
}

const unixUri = (socket: string, exportName = "") => `nbd+unix:///${exportName}?socket=${socket}`

/** nbdkit on a new socket of the temp dir. */
const nbdkit = async (name: string, ...args: ReadonlyArray<string>) => {
  const socket = join(dir, `${name}.sock`)
  const { child, stderr } = await serve("nbdkit", ["--exit-with-parent", "-f", "-U", socket, ...args], socket)
  return { uri: unixUri(socket), child, socket, stderr }
}

/** A TCP port nobody listens on (now). */
const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })

/** The bytes of nbdkit's pattern plugin: each 8-byte word holds its own offset, big-endian. */
const patternBytes = (size: number): Uint8Array => {
  const bytes = new Uint8Array(Math.ceil(size / 8) * 8)
  const view = new DataView(bytes.buffer)
  for (let at = 0; at < bytes.length; at += 8) {
    view.setUint32(at, Math.floor(at / 2 ** 32))
    view.setUint32(at + 4, at >>> 0)
  }
  return bytes.subarray(0, size)
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length))

/** Reads [offset, offset + length) into a buffer poisoned with 0xEE, so that bytes not written show. */
const readBytes = (connection: NbdConnection, offset: number, length: number) =>
  Effect.suspend(() => {
    const buffer = new Uint8Array(length).fill(0xee)
    return Effect.as(connection.read(offset, buffer), buffer)
  })

const reasonOf = <A, R>(effect: Effect.Effect<A, { readonly reason: string }, R>) => Effect.map(Effect.flip(effect), (error) => error.reason)

const patternSize = 48 * MiB + 5
let pattern = { uri: "" }
let qemu = ""
let fileTcp = { uri: "", bytes: new Uint8Array(0) }

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "cb-nbd-"))
  pattern = await nbdkit("pattern", "pattern", `size=${patternSize}`)
  // A qcow2 image: data at 1M..3M, written zeros at 8M..9M, and after the bitmap b0 was started, data at 20M..20M+64K.
  const image = join(dir, "x.qcow2")
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", image, "64M"])
  execFileSync("qemu-io", ["-c", "write -P 0x55 1M 2M", "-c", "write -z 8M 1M", image], { stdio: "ignore" })
  execFileSync("qemu-img", ["bitmap", "--add", image, "b0"])
  execFileSync("qemu-io", ["-c", "write -P 0x66 20M 64k", image], { stdio: "ignore" })
  const qemuSocket = join(dir, "qemu.sock")
  await serve("qemu-nbd", ["-f", "qcow2", "-B", "b0", "-k", qemuSocket, "--persistent", image], qemuSocket)
  qemu = unixUri(qemuSocket)
  // A file of random bytes served over TCP.
  const bytes = randomBytes(10 * MiB + 777)
  writeFileSync(join(dir, "random.img"), bytes)
  const port = await freePort()
  const child = spawn("nbdkit", ["--exit-with-parent", "-f", "-i", "127.0.0.1", "-p", String(port), "file", join(dir, "random.img")], { stdio: "ignore" })
  children.push(child)
  fileTcp = { uri: `nbd://127.0.0.1:${port}/`, bytes }
  for (let tries = 0; ; tries++) {
    const up = await new Promise<boolean>((resolve) => {
      const probe = createServer()
      probe.once("error", () => resolve(true)).listen(port, "127.0.0.1", () => probe.close(() => resolve(false)))
    })
    if (up || tries > 500) break
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
})

afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  rmSync(dir, { recursive: true, force: true })
})

describe("reads", () => {
  it.scopedLive("reads at random offsets and lengths, past the 4 MiB request size and unaligned, match nbdkit's pattern", () =>
    Effect.gen(function* () {
      const expected = patternBytes(patternSize)
      const connection = yield* connect(pattern.uri)
      expect(connection.size).toBe(patternSize)
      expect(connection.contexts).toEqual([])
      let seed = 7
      const random = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) % n)
      const ranges: Array<readonly [number, number]> = [[0, 1], [patternSize - 1, 1], [patternSize - 5000, 5000], [3, 13 * MiB + 7], [0, patternSize]]
      for (let i = 0; i < 12; i++) {
        const length = 1 + random(i % 3 === 0 ? 9 * MiB : 70 * KiB)
        ranges.push([random(patternSize - length), length])
      }
      for (const [offset, length] of ranges) {
        const got = yield* readBytes(connection, offset, length)
        expect([offset, length, same(got, expected.subarray(offset, offset + length))]).toEqual([offset, length, true])
      }
      expect(yield* reasonOf(connection.read(patternSize - 10, new Uint8Array(11)))).toBe(`a read of 11 bytes at offset ${patternSize - 10} is outside the export (${patternSize} bytes)`)
      yield* connection.read(patternSize, new Uint8Array(0))
    })
  )

  it.scopedLive("concurrent reads over TCP, with fewer requests in flight than pieces, return a file's random bytes", () =>
    Effect.gen(function* () {
      const connection = yield* connect(fileTcp.uri, { maxInFlight: 3 })
      const { bytes } = fileTcp
      expect(connection.size).toBe(bytes.length)
      const whole = new Uint8Array(bytes.length)
      const piece = 3 * MiB + 1
      yield* Effect.forEach(
        Array.from({ length: Math.ceil(bytes.length / piece) }, (_, i) => i * piece),
        (offset) => connection.read(offset, whole.subarray(offset, Math.min(offset + piece, bytes.length))),
        { concurrency: 4, discard: true }
      )
      expect(same(whole, bytes)).toBe(true)
    })
  )

  it.scopedLive("qemu-nbd: holes and written zeros read as zeros (over poisoned buffers), data as written", () =>
    Effect.gen(function* () {
      const connection = yield* connect(qemu)
      expect(connection.size).toBe(64 * MiB)
      const got = yield* readBytes(connection, 0, 24 * MiB)
      const expected = new Uint8Array(24 * MiB)
      expected.fill(0x55, 1 * MiB, 3 * MiB)
      expected.fill(0x66, 20 * MiB, 20 * MiB + 64 * KiB)
      expect(same(got, expected)).toBe(true)
      expect(same(yield* readBytes(connection, 3 * MiB - 10, 20), expected.subarray(3 * MiB - 10, 3 * MiB + 10))).toBe(true)
    })
  )
})

describe("block status", () => {
  it.scopedLive("base:allocation of a qcow2 image: data where written, hole and zero elsewhere, the written zeros ZERO", () =>
    Effect.gen(function* () {
      const connection = yield* connect(qemu, { contexts: ["base:allocation", "qemu:dirty-bitmap:b0", "qemu:dirty-bitmap:nope"] })
      expect([...connection.contexts].sort()).toEqual(["base:allocation", "qemu:dirty-bitmap:b0"])
      const empty = NBD_STATE_HOLE | NBD_STATE_ZERO
      const extents = yield* connection.blockStatus("base:allocation", 0, 64 * MiB)
      expect(extents).toEqual([
        { start: 0, end: 1 * MiB, flags: empty },
        { start: 1 * MiB, end: 3 * MiB, flags: 0 },
        { start: 3 * MiB, end: 20 * MiB, flags: empty },
        { start: 20 * MiB, end: 20 * MiB + 64 * KiB, flags: 0 },
        { start: 20 * MiB + 64 * KiB, end: 64 * MiB, flags: empty }
      ])
      const zeros = extents.find((extent) => extent.start <= 8 * MiB && extent.end >= 9 * MiB)
      expect(zeros!.flags & NBD_STATE_ZERO).toBe(NBD_STATE_ZERO)
      // A sub-range is clipped to exactly what was asked.
      expect(yield* connection.blockStatus("base:allocation", 2 * MiB + 1, 8 * MiB + 3)).toEqual([
        { start: 2 * MiB + 1, end: 3 * MiB, flags: 0 },
        { start: 3 * MiB, end: 8 * MiB + 3, flags: empty }
      ])
      expect(yield* connection.blockStatus("base:allocation", 5, 5)).toEqual([])
      expect(yield* connection.blockStatus("qemu:dirty-bitmap:b0", 0, 64 * MiB)).toEqual([
        { start: 0, end: 20 * MiB, flags: 0 },
        { start: 20 * MiB, end: 20 * MiB + 64 * KiB, flags: NBD_STATE_DIRTY },
        { start: 20 * MiB + 64 * KiB, end: 64 * MiB, flags: 0 }
      ])
      expect(yield* reasonOf(connection.blockStatus("qemu:dirty-bitmap:nope", 0, MiB))).toBe(
        `the meta context "qemu:dirty-bitmap:nope" was not negotiated (the server agreed to "base:allocation", "qemu:dirty-bitmap:b0")`
      )
      expect(yield* reasonOf(connection.blockStatus("base:allocation", 0, 64 * MiB + 1))).toMatch(/is outside the export/)
    })
  )

  it.scopedLive("a range past the 1 GiB request limit is asked in several requests, merged into one extent", () =>
    Effect.gen(function* () {
      const big = yield* Effect.promise(() => nbdkit("big", "pattern", "size=3G"))
      const connection = yield* connect(big.uri, { contexts: ["base:allocation"] })
      expect(yield* connection.blockStatus("base:allocation", 100, 3 * 1024 * MiB - 1)).toEqual([{ start: 100, end: 3 * 1024 * MiB - 1, flags: 0 }])
      const plain = yield* connect(pattern.uri)
      expect(yield* reasonOf(plain.blockStatus("base:allocation", 0, 10))).toBe(`the meta context "base:allocation" was not negotiated (the server agreed to none)`)
    })
  )
})

describe("failures", () => {
  it.scopedLive("connection refused (TCP), no socket (Unix), an unknown export: NbdError with the reason", () =>
    Effect.gen(function* () {
      const port = yield* Effect.promise(freePort)
      const refused = yield* Effect.flip(connect(`nbd://127.0.0.1:${port}/`))
      expect(refused).toMatchObject({ _tag: "NbdError", uri: `nbd://127.0.0.1:${port}/`, reason: "connection refused (ECONNREFUSED)" })
      expect(refused.message).toBe(`NBD nbd://127.0.0.1:${port}/: connection refused (ECONNREFUSED)`)
      const missing = join(dir, "nobody.sock")
      expect(yield* reasonOf(connect(unixUri(missing)))).toBe(`no socket at ${missing} (ENOENT)`)
      expect(yield* reasonOf(connect("nbds://127.0.0.1/"))).toMatch(/asks for TLS/)
      const raw = join(dir, "raw.img")
      writeFileSync(raw, new Uint8Array(MiB))
      const socket = join(dir, "named.sock")
      yield* Effect.promise(() => serve("qemu-nbd", ["-f", "raw", "-x", "disk", "-k", socket, "--persistent", raw], socket))
      expect(yield* reasonOf(connect(unixUri(socket, "other")))).toMatch(/^the server has no export named "other"/)
      expect(yield* reasonOf(connect(unixUri(socket, "other"), { contexts: ["base:allocation"] }))).toMatch(/^the server has no export named "other"/)
      expect((yield* connect(unixUri(socket, "disk"))).size).toBe(MiB)
    })
  )

  it.scopedLive("an error reply names the errno; the connection stays usable", () =>
    Effect.gen(function* () {
      const failing = yield* Effect.promise(() => nbdkit("eio", "--filter=error", "pattern", "size=16M", "error-pread-rate=1"))
      const connection = yield* connect(failing.uri, { contexts: ["base:allocation"] })
      expect(yield* reasonOf(connection.read(4096, new Uint8Array(100)))).toBe("the server answered a read at offset 4096 with EIO")
      expect(yield* reasonOf(connection.read(5 * MiB, new Uint8Array(9 * MiB)))).toMatch(/^the server answered a read at offset \d+ with EIO$/)
      expect(yield* connection.blockStatus("base:allocation", 0, 16 * MiB)).toEqual([{ start: 0, end: 16 * MiB, flags: 0 }])
      const eperm = yield* Effect.promise(() => nbdkit("eperm", "--filter=error", "pattern", "size=1M", "error-pread-rate=1", "error-pread=EPERM"))
      expect(yield* reasonOf(Effect.flatMap(connect(eperm.uri), (c) => c.read(0, new Uint8Array(10))))).toBe("the server answered a read at offset 0 with EPERM")
    })
  )

  it.scopedLive("a server killed during a read: the read fails at once, later calls too, and reconnecting is refused", () =>
    Effect.gen(function* () {
      const slow = yield* Effect.promise(() => nbdkit("killed", "--filter=delay", "pattern", "size=16M", "rdelay=3"))
      const connection = yield* connect(slow.uri)
      const pending = yield* Effect.fork(connection.read(MiB, new Uint8Array(6 * MiB)))
      yield* Effect.sleep("200 millis")
      const started = Date.now()
      process.kill(slow.child.pid!, "SIGKILL")
      const error = yield* Effect.flip(Fiber.join(pending))
      expect(Date.now() - started).toBeLessThan(1000)
      expect(error.reason).toMatch(/^the server closed the connection during a read at offset (1048576|5242880)$/)
      expect(yield* reasonOf(connection.read(0, new Uint8Array(1)))).toBe("the server has closed the connection")
      // Until the kernel has torn the process down, its listening socket may
      // still take a connection and reset it: reconnect once it has exited.
      if (slow.child.exitCode === null && slow.child.signalCode === null) {
        yield* Effect.async<void>((resume) => void slow.child.once("exit", () => resume(Effect.void)))
      }
      expect(yield* reasonOf(connect(slow.uri))).toBe("connection refused (ECONNREFUSED)")
    })
  )

  it.scopedLive("an interrupted read never writes into its buffer afterwards, and the connection still reads", () =>
    Effect.gen(function* () {
      const slow = yield* Effect.promise(() => nbdkit("slow", "--filter=delay", "pattern", "size=16M", "rdelay=800ms"))
      const connection = yield* connect(slow.uri)
      const buffer = new Uint8Array(5 * MiB).fill(0xee)
      const pending = yield* Effect.fork(connection.read(8 * KiB, buffer))
      yield* Effect.sleep("100 millis")
      yield* Fiber.interrupt(pending)
      yield* Effect.sleep("1200 millis")
      expect(buffer.every((b) => b === 0xee)).toBe(true)
      const next = yield* readBytes(connection, 8 * KiB, 64 * KiB)
      expect(same(next, patternBytes(72 * KiB).subarray(8 * KiB))).toBe(true)
      expect(buffer.every((b) => b === 0xee)).toBe(true)
    })
  )

  it.scopedLive("the scope's end disconnects cleanly (nbdkit sees NBD_CMD_DISC); a silent server is cut short by the handshake timeout", () =>
    Effect.gen(function* () {
      const verbose = yield* Effect.promise(() => nbdkit("verbose", "-v", "pattern", "size=1M"))
      const connection = yield* Effect.scoped(connect(verbose.uri))
      expect(yield* reasonOf(connection.read(0, new Uint8Array(1)))).toBe("the connection is closed (its scope has ended)")
      yield* Effect.sleep("100 millis")
      expect(verbose.stderr()).toMatch(/NBD_CMD_DISC/)
      const silent = join(dir, "silent.sock")
      const server = createServer(() => {}).listen(silent)
      yield* Effect.addFinalizer(() => Effect.sync(() => server.close()))
      const timedOut = yield* Effect.either(connect(unixUri(silent), { handshakeTimeout: "200 millis" }))
      expect(Either.isLeft(timedOut) && timedOut.left.reason).toBe("the server did not finish the handshake within 200ms")
    })
  )
})
