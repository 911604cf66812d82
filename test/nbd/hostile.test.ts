/**
 * The NBD client against a scripted server in the test process, for what
 * real servers never send: replies out of order and cut into tiny writes,
 * chunks outside their request, overlapping or short, huge claimed lengths,
 * unknown cookies and types, bad handshakes. Each must end in the bytes
 * asked for or in an NbdError with its reason: no defect, no hang, no byte
 * written outside what was asked.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer, type Socket } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { connect, type NbdConnection } from "../../src/nbd/client.js"

interface Request {
  readonly type: number
  readonly cookie: Buffer
  readonly offset: number
  readonly length: number
}

interface Script {
  /** answers an option itself, or returns false for the usual answer */
  readonly option?: (option: number, data: Buffer, send: (bytes: Buffer) => void, hangUp: () => void) => boolean
  readonly request?: (request: Request, send: (...segments: ReadonlyArray<Buffer>) => void) => void
  readonly size?: number
  /** the maximum payload advertised, if any */
  readonly maxPayload?: number
  readonly greeting?: Buffer
}

const u16 = (n: number) => Buffer.from([n >>> 8, n & 255])
const u32 = (n: number) => {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n >>> 0)
  return b
}
const u64 = (n: number) => Buffer.concat([u32(Math.floor(n / 2 ** 32)), u32(n >>> 0)])

const optionReply = (option: number, type: number, payload = Buffer.alloc(0)) =>
  Buffer.concat([u32(0x0003e889), u32(0x045565a9), u32(option), u32(type), u32(payload.length), payload])
const chunk = (cookie: Buffer, flags: number, type: number, payload: Buffer, length = payload.length) =>
  Buffer.concat([u32(0x668e33ef), u16(flags), u16(type), cookie, u32(length), payload])
const DONE = 1
const data = (cookie: Buffer, offset: number, bytes: Buffer, flags = 0) => chunk(cookie, flags, 1, Buffer.concat([u64(offset), bytes]))
const hole = (cookie: Buffer, offset: number, length: number, flags = 0) => chunk(cookie, flags, 2, Buffer.concat([u64(offset), u32(length)]))
const none = (cookie: Buffer) => chunk(cookie, DONE, 0, Buffer.alloc(0))
const error = (cookie: Buffer, errno: number, message: string, offset?: number) => {
  const text = Buffer.from(message)
  const tail = offset === undefined ? Buffer.alloc(0) : u64(offset)
  return chunk(cookie, DONE, offset === undefined ? 32769 : 32770, Buffer.concat([u32(errno), u16(text.length), text, tail]))
}
const status = (cookie: Buffer, context: number, extents: ReadonlyArray<readonly [number, number]>, flags = 0) =>
  chunk(cookie, flags, 5, Buffer.concat([u32(context), ...extents.flatMap(([length, state]) => [u32(length), u32(state)])]))
const simple = (cookie: Buffer, errno: number, payload = Buffer.alloc(0)) => Buffer.concat([u32(0x67446698), u32(errno), cookie, payload])

/** Known bytes: byte i of the export is (i * 7 + 3) & 255. */
const exportBytes = (offset: number, length: number) => Buffer.from(Array.from({ length }, (_, i) => ((offset + i) * 7 + 3) & 255))

/** Writes the segments in pieces, small ones byte by byte, so that the client's reads cut headers and descriptors anywhere. */
const dribble = async (socket: Socket, segments: ReadonlyArray<Buffer>) => {
  for (const segment of segments) {
    for (let at = 0; at < segment.length;) {
      const piece = segment.length <= 64 ? 1 + (at % 3) : 1 + ((at * 7919) % 8192)
      socket.write(segment.subarray(at, at + piece))
      at += piece
      await new Promise((resolve) => setImmediate(resolve))
    }
  }
}

/** A scripted NBD server on a Unix socket for the scope; its URI. */
const fakeServer = (script: Script) =>
  Effect.acquireRelease(
    Effect.async<{ readonly uri: string; readonly close: () => void }>((resume) => {
      const dir = mkdtempSync(join(tmpdir(), "cb-nbd-fake-"))
      const path = join(dir, "s.sock")
      const sockets = new Set<Socket>()
      const server = createServer((socket) => {
        sockets.add(socket)
        socket.on("error", () => {})
        socket.write(script.greeting ?? Buffer.concat([Buffer.from("NBDMAGICIHAVEOPT"), u16(3)]))
        let input = Buffer.alloc(0)
        let stage: "flags" | "options" | "transmission" = "flags"
        socket.on("data", (bytes) => {
          input = Buffer.concat([input, bytes])
          for (;;) {
            if (stage === "flags") {
              if (input.length < 4) return
              input = input.subarray(4)
              stage = "options"
            } else if (stage === "options") {
              if (input.length < 16 || input.length < 16 + input.readUInt32BE(12)) return
              const option = input.readUInt32BE(8)
              const payload = input.subarray(16, 16 + input.readUInt32BE(12))
              input = input.subarray(16 + payload.length)
              if (script.option?.(option, payload, (reply) => socket.write(reply), () => socket.destroy())) continue
              if (option === 7) {
                const info = Buffer.concat([u16(0), u64(script.size ?? 1024 * 1024), u16(1)])
                const sizes = script.maxPayload === undefined ? [] : [optionReply(7, 3, Buffer.concat([u16(3), u32(4096), u32(4096), u32(script.maxPayload)]))]
                socket.write(Buffer.concat([optionReply(7, 3, info), ...sizes, optionReply(7, 1)]))
                stage = "transmission"
              } else if (option === 10) {
                socket.write(Buffer.concat([optionReply(10, 4, Buffer.concat([u32(1), Buffer.from("base:allocation")])), optionReply(10, 1)]))
              } else socket.write(optionReply(option, 1))
            } else {
              if (input.length < 28) return
              const request = { type: input.readUInt16BE(6), cookie: Buffer.from(input.subarray(8, 16)), offset: Number(input.readBigUInt64BE(16)), length: input.readUInt32BE(24) }
              input = input.subarray(28)
              if (request.type === 2) return void socket.end()
              script.request?.(request, (...segments) => void dribble(socket, segments))
            }
          }
        })
      })
      const close = () => {
        for (const socket of sockets) socket.destroy()
        server.close()
        rmSync(dir, { recursive: true, force: true })
      }
      server.listen(path, () => resume(Effect.succeed({ uri: `nbd+unix:///?socket=${path}`, close })))
    }),
    ({ close }) => Effect.sync(close)
  )

const withServer = <A, E>(script: Script, use: (connection: NbdConnection) => Effect.Effect<A, E>, options: { readonly contexts?: ReadonlyArray<string>; readonly maxInFlight?: number } = {}) =>
  Effect.gen(function* () {
    const { uri } = yield* fakeServer(script)
    return yield* use(yield* connect(uri, options))
  })

const reasonOf = <A, R>(effect: Effect.Effect<A, { readonly reason: string }, R>) => Effect.map(Effect.flip(effect), (e) => e.reason)

/** A read of `length` bytes at `offset` whose reply `answer` makes; the buffer is poisoned to show what was written. */
const readWith = (answer: (request: Request) => ReadonlyArray<Buffer>, offset = 0, length = 4096) =>
  Effect.gen(function* () {
    const buffer = Buffer.alloc(length, 0xee)
    const outcome = yield* withServer({ request: (request, send) => send(...answer(request)) }, (connection) =>
      Effect.gen(function* () {
        const reason = yield* Effect.either(connection.read(offset, buffer))
        const after = yield* Effect.either(connection.read(offset, Buffer.alloc(1)))
        return { reason, after }
      })
    )
    return { ...outcome, buffer }
  })

describe("replies a real server seldom sends", () => {
  it.scopedLive("chunks out of order, interleaved across requests, cut into tiny writes, holes and a simple reply: reassembled exactly", () =>
    withServer(
      {
        size: 256 * 1024,
        maxPayload: 64 * 1024,
        request: (() => {
          const seen: Array<Request> = []
          return (request, send) => {
            seen.push(request)
            if (seen.length < 4) return
            const [r0, r1, r2, r3] = [...seen].sort((a, b) => a.offset - b.offset) as [Request, Request, Request, Request]
            const half = 32 * 1024
            send(
              data(r3.cookie, r3.offset + half, exportBytes(r3.offset + half, half)),
              hole(r1.cookie, r1.offset + half, half),
              data(r3.cookie, r3.offset, exportBytes(r3.offset, half), DONE),
              simple(r0.cookie, 0, exportBytes(r0.offset, r0.length)),
              hole(r2.cookie, r2.offset, 2 * half, DONE),
              data(r1.cookie, r1.offset, exportBytes(r1.offset, half)),
              none(r1.cookie)
            )
          }
        })()
      },
      (connection) =>
        Effect.gen(function* () {
          expect(connection.blockSize.maximum).toBe(64 * 1024)
          const buffer = Buffer.alloc(256 * 1024 - 100, 0xee)
          yield* connection.read(100, buffer)
          const expected = Buffer.concat([exportBytes(0, 64 * 1024), exportBytes(64 * 1024, 32 * 1024), Buffer.alloc(96 * 1024), exportBytes(192 * 1024, 64 * 1024)])
          expect(buffer.equals(expected.subarray(100))).toBe(true)
        }),
      { maxInFlight: 4 }
    )
  )

  it.scopedLive("a last extent past the request is clipped; extents for one context among two", () =>
    withServer(
      {
        option: (option, _, send) => {
          if (option !== 10) return false
          send(Buffer.concat([optionReply(10, 4, Buffer.concat([u32(1), Buffer.from("base:allocation")])), optionReply(10, 4, Buffer.concat([u32(2), Buffer.from("qemu:dirty-bitmap:b")])), optionReply(10, 1)]))
          return true
        },
        request: (request, send) =>
          send(status(request.cookie, 2, [[request.length, 1]]), status(request.cookie, 1, request.offset === 0 ? [[512 * 1024, 0], [4 * 1024 * 1024, 3]] : [[request.length, 0]], DONE))
      },
      (connection) =>
        Effect.gen(function* () {
          expect(yield* connection.blockStatus("base:allocation", 0, 1024 * 1024)).toEqual([{ start: 0, end: 512 * 1024, flags: 0 }, { start: 512 * 1024, end: 1024 * 1024, flags: 3 }])
          expect(yield* connection.blockStatus("qemu:dirty-bitmap:b", 4096, 8192)).toEqual([{ start: 4096, end: 8192, flags: 1 }])
        }),
      { contexts: ["base:allocation", "qemu:dirty-bitmap:b"] }
    )
  )
})

describe("replies that break the protocol end the connection, writing nothing", () => {
  // name, the reply, its reason, and how many leading bytes of the buffer were legitimately sent before the breach
  const broken: ReadonlyArray<readonly [string, (r: Request) => ReadonlyArray<Buffer>, RegExp, number?]> = [
    ["data outside the request", (r) => [data(r.cookie, 4096, exportBytes(4096, 4096), DONE)], /has data at \[4096, 8192\), outside the request \[0, 4096\)$/],
    ["a claimed 1 GiB data chunk (only its header sent)", (r) => [chunk(r.cookie, DONE, 1, u64(0), 2 ** 30 + 8)], /has data at \[0, 1073741824\), outside the request/],
    ["overlapping chunks", (r) => [data(r.cookie, 0, exportBytes(0, 2048)), data(r.cookie, 1024, exportBytes(1024, 3072), DONE)], /overlaps an earlier chunk$/, 2048],
    ["a hole outside the request", (r) => [hole(r.cookie, 0, 8192, DONE)], /a hole at \[0, 8192\), outside the request/],
    ["an unknown cookie", () => [none(u64(999))], /a reply for cookie 999, which no request in flight has$/],
    ["a cookie past 2^53", () => [none(Buffer.alloc(8, 0xff))], /a reply for a cookie past 2\^53, which was never sent$/],
    ["the wrong magic", () => [Buffer.from("HTTP/1.1 400 Bad Request\r\n\r\n")], /the wrong magic 0x48545450$/],
    ["an unknown chunk type", (r) => [chunk(r.cookie, DONE, 77, Buffer.alloc(4))], /a chunk of type 77, which does not belong there$/],
    ["block status in a read's reply", (r) => [status(r.cookie, 1, [[4096, 0]], DONE)], /a chunk of type 5, which does not belong there$/],
    ["NONE without DONE", (r) => [chunk(r.cookie, 0, 0, Buffer.alloc(0))], /without the DONE flag$/],
    ["an error message longer than 4096 bytes", (r) => [chunk(r.cookie, DONE, 32769, Buffer.concat([u32(5), u16(5000), Buffer.alloc(5000)]))], /an error chunk of 5006 bytes$/],
    ["an error message longer than its chunk", (r) => [chunk(r.cookie, DONE, 32769, Buffer.concat([u32(5), u16(100), Buffer.alloc(10)]))], /does not fit its 16 bytes$/],
    ["an error offset outside the request", (r) => [error(r.cookie, 5, "", 10_000)], /an error at offset 10000, outside the request/],
    ["a simple reply after a chunk", (r) => [data(r.cookie, 0, exportBytes(0, 10)), simple(r.cookie, 5)], /a simple reply after structured chunks$/, 10]
  ]
  for (const [name, answer, reason, written = 0] of broken) {
    it.scopedLive(name, () =>
      Effect.gen(function* () {
        const { reason: first, after, buffer } = yield* readWith(answer)
        expect(first._tag === "Left" && first.left.reason).toMatch(/^the server broke the protocol: /)
        expect(first._tag === "Left" && first.left.reason).toMatch(reason)
        expect(after._tag === "Left" && after.left.reason).toBe(first._tag === "Left" && first.left.reason)
        expect(buffer.subarray(0, written).equals(exportBytes(0, written))).toBe(true)
        expect(buffer.subarray(written).every((b) => b === 0xee)).toBe(true)
      })
    )
  }
})

describe("replies that fail one request, not the connection", () => {
  it.scopedLive("a reply covering part of its read; an error with the server's message; an error at an offset", () =>
    Effect.gen(function* () {
      const short = yield* readWith((r) => [data(r.cookie, 0, exportBytes(0, 2048), DONE)])
      expect(short.reason._tag === "Left" && short.reason.left.reason).toBe("the server's reply to a read at offset 0 covered 2048 of its 4096 bytes")
      expect(short.after._tag).toBe("Left")
      const said = yield* readWith((r) => [error(r.cookie, 28, "disk \u001b[31mfull")])
      expect(said.reason._tag === "Left" && said.reason.left.reason).toBe('the server answered a read at offset 0 with ENOSPC: "disk \\u001b[31mfull"')
      const at = yield* readWith((r) => [data(r.cookie, 0, exportBytes(0, 1024)), error(r.cookie, 5, "", 2048)])
      expect(at.reason._tag === "Left" && at.reason.left.reason).toBe("the server answered a read at offset 2048 with EIO")
      expect(at.buffer.subarray(1024).every((b) => b === 0xee)).toBe(true)
    })
  )

  it.scopedLive("after a failed request the next one on the same connection succeeds", () =>
    withServer(
      { request: (r, send) => send(r.offset === 0 ? simple(r.cookie, 22) : data(r.cookie, r.offset, exportBytes(r.offset, r.length), DONE)) },
      (connection) =>
        Effect.gen(function* () {
          expect(yield* reasonOf(connection.read(0, Buffer.alloc(10)))).toBe("the server answered a read at offset 0 with EINVAL")
          const buffer = Buffer.alloc(10)
          yield* connection.read(4096, buffer)
          expect(buffer.equals(exportBytes(4096, 10))).toBe(true)
        })
    )
  )

  it.scopedLive("ESHUTDOWN is a soft disconnect: this and later calls fail with it", () =>
    withServer({ request: (r, send) => send(error(r.cookie, 108, "bye")) }, (connection) =>
      Effect.gen(function* () {
        expect(yield* reasonOf(connection.read(0, Buffer.alloc(10)))).toBe("the server is shutting down (ESHUTDOWN)")
        expect(yield* reasonOf(connection.read(0, Buffer.alloc(10)))).toBe("the server is shutting down (ESHUTDOWN)")
      })
    )
  )

})

describe("a buffer taken away during its read (the caller's bug)", () => {
  it.scopedLive("ends the connection in an NbdError, not a hang", () =>
    withServer({ request: (r, send) => void setTimeout(() => send(data(r.cookie, r.offset, exportBytes(r.offset, r.length), DONE)), 50) }, (connection) =>
      Effect.gen(function* () {
        const buffer = new Uint8Array(4096)
        const pending = yield* Effect.fork(connection.read(0, buffer))
        structuredClone(buffer.buffer, { transfer: [buffer.buffer] })
        expect(yield* reasonOf(Fiber.join(pending))).toMatch(/^a reply could not be handled \(.*detached/)
      })
    )
  )
})

describe("block status replies that are refused", () => {
  it.scopedLive("an extent of length 0, extents past the request, an unknown context, two chunks for one, a simple reply, no chunk for the context", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<readonly [(r: Request) => ReadonlyArray<Buffer>, string]> = [
        [(r) => [status(r.cookie, 1, [[0, 0]], DONE)], "an extent of length 0"],
        [(r) => [status(r.cookie, 1, [[r.length, 0], [512, 0]], DONE)], "extents past the end of the request"],
        [(r) => [status(r.cookie, 7, [[r.length, 0]], DONE)], "extents for context id 7, which was not negotiated"],
        [(r) => [status(r.cookie, 1, [[512, 0]]), status(r.cookie, 1, [[512, 0]], DONE)], "two chunks of extents for base:allocation"],
        [(r) => [simple(r.cookie, 0)], "a simple reply without an error"],
        [(r) => [none(r.cookie)], "no extents for the context asked for"]
      ]
      for (const [answer, reason] of cases) {
        const got = yield* withServer({ request: (r, send) => send(...answer(r)) }, (c) => reasonOf(c.blockStatus("base:allocation", 0, 8192)), { contexts: ["base:allocation"] })
        expect(got).toContain(reason)
      }
    })
  )
})

describe("handshakes that fail", () => {
  const cases: ReadonlyArray<readonly [string, Script, string | RegExp]> = [
    ["no structured replies", { option: (o, _, send) => o === 8 && (send(optionReply(8, 2 ** 31 + 1)), true) }, "the server does not support structured replies"],
    ["a 4 GiB option reply", { option: (o, _, send) => o === 8 && (send(optionReply(8, 1).fill(0xff, 16, 20)), true) }, /a reply of 4294967295 bytes to NBD_OPT_STRUCTURED_REPLY \(at most 65536 accepted\)/],
    ["TLS required", { option: (o, _, send) => o === 7 && (send(optionReply(7, 2 ** 31 + 5, Buffer.from("use TLS"))), true) }, 'the server requires TLS, which this client does not support (the server says "use TLS")'],
    ["a policy refusal", { option: (o, _, send) => o === 7 && (send(optionReply(7, 2 ** 31 + 2)), true) }, 'the server refused NBD_OPT_GO for the export "" with NBD_REP_ERR_POLICY'],
    ["no export size", { option: (o, _, send) => o === 7 && (send(optionReply(7, 1)), true) }, /did not send the export's size/],
    ["an export past 2^53 bytes", { option: (o, _, send) => o === 7 && (send(optionReply(7, 3, Buffer.concat([u16(0), Buffer.alloc(8, 0xff), u16(1)]))), true) }, /too large/],
    ["a reply to another option", { option: (o, _, send) => o === 8 && (send(optionReply(7, 1)), true) }, /it answered NBD_OPT_GO to NBD_OPT_STRUCTURED_REPLY/],
    ["an oldstyle server", { greeting: Buffer.concat([Buffer.from("NBDMAGIC"), Buffer.from([0, 0, 0x42, 2, 0x81, 0x86, 0x12, 0x53]), Buffer.alloc(2)]) }, /oldstyle/],
    ["not an NBD server", { greeting: Buffer.from("SSH-2.0-OpenSSH_9.2p1 Debian\r\n") }, /it is not an NBD server/],
    // Refused for the flood or for its first bad header, whichever the socket's reads show first.
    ["a flood of garbage during the handshake", { option: (o, _, send) => o === 8 && (send(Buffer.alloc(300 * 1024)), true) }, /more than it was asked for during the handshake|an option reply has the wrong magic/],
    ["a hang-up during NBD_OPT_GO", { option: (o, _, __, hangUp) => o === 7 && (hangUp(), true) }, "the server closed the connection during the reply to NBD_OPT_GO"]
  ]
  for (const [name, script, reason] of cases) {
    it.scopedLive(name, () =>
      Effect.gen(function* () {
        const { uri } = yield* fakeServer(script)
        const got = yield* reasonOf(connect(uri, { contexts: [] }))
        if (typeof reason === "string") expect(got).toBe(reason)
        else expect(got).toMatch(reason)
      })
    )
  }
})
