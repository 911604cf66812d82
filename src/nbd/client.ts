/**
 * An NBD client over TCP or a Unix socket: the fixed newstyle handshake
 * (structured replies, meta contexts, NBD_OPT_GO), then pipelined reads and
 * block status queries. Replies are parsed by a push-based state machine on
 * the socket's reads, payload bytes copied straight from the socket's
 * buffer into the caller's. Everything the server sends is untrusted: each
 * chunk is checked against its request before a byte of it is written, and
 * a server that breaks the protocol ends the connection in an NbdError.
 */
import { Duration, Effect, Either, type Scope } from "effect"
import { connect as netConnect, type Socket } from "node:net"
import { clip } from "../format/untrusted.js"
import { connectFailure, NbdError, refusal } from "./errors.js"
import {
  decodeGreeting, decodeInfo, decodeMetaContext, decodeMessage, decodeOptionReplyHeader, encodeClientFlags, encodeInfoRequest,
  encodeMetaContextRequest, encodeOption, encodeRequest, GREETING_LENGTH, isOptionReplyError, NBD_CMD_DISC,
  NBD_FLAG_C_FIXED_NEWSTYLE, NBD_FLAG_C_NO_ZEROES, NBD_FLAG_FIXED_NEWSTYLE, NBD_FLAG_NO_ZEROES, NBD_INFO_BLOCK_SIZE,
  NBD_INFO_EXPORT, NBD_OPT_ABORT, NBD_OPT_GO, NBD_OPT_SET_META_CONTEXT, NBD_OPT_STRUCTURED_REPLY, NBD_REP_ACK, NBD_REP_ERR_UNSUP,
  NBD_REP_INFO, NBD_REP_META_CONTEXT, OPTION_REPLY_HEADER_LENGTH, optionName
} from "./protocol.js"
import { ReplyParser, ReadRequest, StatusRequest, type Ending } from "./replies.js"
import { type NbdAddress, parseNbdUri } from "./uri.js"

export { NbdError } from "./errors.js"
export { NBD_STATE_DIRTY, NBD_STATE_HOLE, NBD_STATE_ZERO } from "./protocol.js"

/** A run of the export with the same status flags, [start, end). */
export interface BlockStatusExtent {
  readonly start: number
  readonly end: number
  readonly flags: number
}

/** An open connection to one export, in transmission phase. */
export interface NbdConnection {
  readonly uri: string
  /** the export's size in bytes, from NBD_INFO_EXPORT */
  readonly size: number
  /** the meta contexts the server agreed to, by name */
  readonly contexts: ReadonlyArray<string>
  /** the server's block size constraints (defaults 1 and 32 MiB when it sent none) */
  readonly blockSize: { readonly minimum: number; readonly maximum: number }
  /**
   * Fills `buffer` with the export's bytes from `offset` on (offset +
   * buffer.length <= size), as NBD_CMD_READ requests of at most 4 MiB
   * (less if the server says so), several in flight. Holes are written as
   * zeros. Interrupted, the requests in flight are abandoned: what arrives
   * for them later is discarded, never written into `buffer`.
   */
  readonly read: (offset: number, buffer: Uint8Array) => Effect.Effect<void, NbdError>
  /**
   * The extents of [start, end) in one negotiated context ("base:allocation",
   * "qemu:dirty-bitmap:NAME"), in order, covering the range exactly, runs
   * of equal flags merged. Fails if the context was not negotiated.
   */
  readonly blockStatus: (context: string, start: number, end: number) => Effect.Effect<ReadonlyArray<BlockStatusExtent>, NbdError>
}

/** Options of `connect`. */
export interface ConnectOptions {
  /** meta contexts to ask for, e.g. "base:allocation"; none asked by default */
  readonly contexts?: ReadonlyArray<string>
  /** requests kept in flight on the connection (default 8) */
  readonly maxInFlight?: number
  /** how long connecting and the handshake may take (default 30 seconds) */
  readonly handshakeTimeout?: Duration.DurationInput
}

const KiB = 1024
const MiB = 1024 * KiB
/** An option reply longer than this is refused before it is read. */
const MAX_OPTION_REPLY = 64 * KiB
/** Bytes the server may send ahead during the handshake before it counts as flooding. */
const MAX_HANDSHAKE_BUFFER = 2 * MAX_OPTION_REPLY
const MAX_READ_REQUEST = 4 * MiB
/** Block status requests cover at most this (the length field is 32 bits). */
const MAX_STATUS_REQUEST = 1024 * MiB
/** The socket's reads go into one buffer of this size, reused. */
const SOCKET_BUFFER = 512 * KiB
const CLOSE_TIMEOUT = Duration.seconds(1)

const alignDown = (n: number, block: number) => n - (n % block)
const alignUp = (n: number, block: number) => alignDown(n + block - 1, block)

const closedByServer: Ending = (during) => (during === undefined ? "the server has closed the connection" : `the server closed the connection during ${during}`)
const released: Ending = () => "the connection is closed (its scope has ended)"

/** The socket, the handshake's input, and how the connection ended. */
class Session {
  readonly socket: Socket
  phase: "handshake" | "between-options" | "transmission" = "handshake"
  ending: Ending | undefined
  cause: unknown
  parser: ReplyParser | undefined
  private connected = false
  private socketClosed = false
  private readonly onClosed: Array<() => void> = []
  private buffered: Buffer = Buffer.alloc(0)
  private waiter: { readonly length: number; readonly during: string; readonly resume: (result: Either.Either<Buffer, string>) => void } | undefined

  constructor(readonly uri: string, readonly address: NbdAddress) {
    const buffer = Buffer.allocUnsafe(SOCKET_BUFFER)
    const onread = { buffer, callback: (n: number) => (this.receive(buffer, n), true) }
    this.socket = address.transport === "tcp"
      ? netConnect({ host: address.host, port: address.port, noDelay: true, onread })
      : netConnect({ path: address.socket, onread })
    this.socket.on("connect", () => (this.connected = true))
    this.socket.on("error", (error: NodeJS.ErrnoException) => {
      const code = error.code ?? error.message
      const reason = this.connected ? undefined : connectFailure(address, code)
      this.cause ??= error
      this.end(reason !== undefined ? () => reason : (during) => `the connection failed (${code})${during === undefined ? "" : ` during ${during}`}`)
    })
    this.socket.on("end", () => this.end(closedByServer))
    this.socket.on("close", () => {
      this.socketClosed = true
      this.end(closedByServer)
      for (const done of this.onClosed.splice(0)) done()
    })
  }

  error(reason: string): NbdError {
    return new NbdError({ uri: this.uri, reason, ...(this.cause === undefined ? {} : { cause: this.cause }) })
  }

  fail(reason: string): Effect.Effect<never, NbdError> {
    return Effect.fail(this.error(reason))
  }

  write(bytes: Uint8Array): void {
    if (this.ending === undefined) this.socket.write(bytes)
  }

  /** The connection is over: everything waiting is told why, later calls fail with it. */
  end(ending: Ending): void {
    if (this.ending !== undefined) return
    this.ending = ending
    this.serve()
    this.parser?.failAll(ending)
  }

  /** A hard disconnect: the server broke the protocol. */
  violation(reason: string): void {
    this.end(() => reason)
    this.socket.destroy()
  }

  /** The server reported ESHUTDOWN: a soft disconnect, as the protocol asks. */
  shutdown(): void {
    const live = this.ending === undefined
    this.end(() => "the server is shutting down (ESHUTDOWN)")
    if (live) this.socket.end(encodeRequest({ flags: 0, type: NBD_CMD_DISC, cookie: 0, offset: 0, length: 0 }))
  }

  private receive(buffer: Buffer, n: number): void {
    if (this.ending !== undefined) return
    try {
      if (this.parser !== undefined) return this.parser.push(buffer, 0, n)
      this.buffered = Buffer.concat([this.buffered, buffer.subarray(0, n)])
      if (this.buffered.length > MAX_HANDSHAKE_BUFFER) return this.violation("the server sent more than it was asked for during the handshake")
      this.serve()
    } catch (error) {
      // A throw here would reach no one and leave every request waiting: end the connection instead.
      this.cause ??= error
      this.violation(`a reply could not be handled (${error instanceof Error ? error.message : String(error)})`)
    }
  }

  private serve(): void {
    const waiter = this.waiter
    if (waiter === undefined) return
    if (this.buffered.length >= waiter.length) {
      this.waiter = undefined
      const bytes = this.buffered.subarray(0, waiter.length)
      this.buffered = this.buffered.subarray(waiter.length)
      waiter.resume(Either.right(bytes))
    } else if (this.ending !== undefined) {
      this.waiter = undefined
      waiter.resume(Either.left(this.ending(waiter.during)))
    }
  }

  /** The next `length` bytes of the handshake. */
  take(length: number, during: string): Effect.Effect<Buffer, NbdError> {
    return Effect.async((resume) => {
      this.waiter = { length, during, resume: (result) => resume(Either.isRight(result) ? Effect.succeed(result.right) : this.fail(result.left)) }
      this.serve()
      return Effect.sync(() => (this.waiter = undefined))
    })
  }

  /** Into transmission phase: replies go to the parser, bytes that came early first. */
  startTransmission(contexts: ReadonlyMap<number, string>): ReplyParser {
    this.phase = "transmission"
    this.parser = new ReplyParser(contexts, {
      write: (bytes) => this.write(bytes),
      violation: (reason) => this.violation(reason),
      shutdown: () => this.shutdown()
    })
    const early = this.buffered
    this.buffered = Buffer.alloc(0)
    if (early.length > 0) this.parser.push(early, 0, early.length)
    return this.parser
  }

  /** A soft disconnect where the protocol allows one (NBD_CMD_DISC, NBD_OPT_ABORT), else a hard one; done when the socket has closed. */
  private close(done: () => void): void {
    if (this.socketClosed) return done()
    this.onClosed.push(done)
    const live = this.ending === undefined
    this.end(released)
    if (live && this.phase === "transmission") this.socket.end(encodeRequest({ flags: 0, type: NBD_CMD_DISC, cookie: 0, offset: 0, length: 0 }))
    else if (live && this.phase === "between-options") this.socket.end(encodeOption(NBD_OPT_ABORT))
    else this.socket.destroy()
  }

  /** Closes the connection, waiting a moment for the server to close its side; idempotent. */
  readonly release: Effect.Effect<void> = Effect.async<void>((resume) => this.close(() => resume(Effect.void))).pipe(
    Effect.timeout(CLOSE_TIMEOUT),
    Effect.ignore,
    Effect.ensuring(Effect.sync(() => this.socket.destroy()))
  )
}

/**
 * Sends one option and reads its replies up to the final one, handing the
 * others (NBD_REP_INFO, NBD_REP_META_CONTEXT) to `partial`. Undefined on
 * NBD_REP_ACK, the error reply otherwise.
 */
const exchange = (
  session: Session,
  option: number,
  data: Uint8Array | undefined,
  partial: (type: number, payload: Buffer) => Either.Either<void, string>
): Effect.Effect<{ readonly type: number; readonly message: string } | undefined, NbdError> =>
  Effect.gen(function* () {
    session.phase = "handshake"
    session.write(encodeOption(option, data))
    const during = `the reply to ${optionName(option)}`
    while (true) {
      const header = decodeOptionReplyHeader(yield* session.take(OPTION_REPLY_HEADER_LENGTH, during))
      if (Either.isLeft(header)) return yield* session.fail(`the server broke the protocol: ${header.left}`)
      const { type, length } = header.right
      if (header.right.option !== option) return yield* session.fail(`the server broke the protocol: it answered ${optionName(header.right.option)} to ${optionName(option)}`)
      if (length > MAX_OPTION_REPLY) return yield* session.fail(`the server broke the protocol: a reply of ${length} bytes to ${optionName(option)} (at most ${MAX_OPTION_REPLY} accepted)`)
      const payload = length === 0 ? Buffer.alloc(0) : yield* session.take(length, during)
      if (type === NBD_REP_ACK || isOptionReplyError(type)) {
        session.phase = "between-options"
        return type === NBD_REP_ACK ? undefined : { type, message: decodeMessage(payload) }
      }
      const handled = partial(type, payload)
      if (Either.isLeft(handled)) return yield* session.fail(`the server broke the protocol: ${handled.left} in ${during}`)
    }
  })

const unexpected = (type: number) => Either.left(`a reply of type ${type}`)

/** What the handshake settled. */
interface Agreed {
  readonly size: number
  readonly minimum: number
  readonly maximum: number
  readonly contexts: ReadonlyMap<number, string>
}

/** The fixed newstyle handshake up to transmission phase. */
const negotiate = (session: Session, exportName: string, queries: ReadonlyArray<string>): Effect.Effect<Agreed, NbdError> =>
  Effect.gen(function* () {
    const greeting = decodeGreeting(yield* session.take(GREETING_LENGTH, "the greeting"))
    if (Either.isLeft(greeting)) return yield* session.fail(greeting.left)
    const flags = greeting.right.handshakeFlags
    if ((flags & NBD_FLAG_FIXED_NEWSTYLE) === 0) return yield* session.fail("the server does not do fixed newstyle negotiation")
    session.write(encodeClientFlags(NBD_FLAG_C_FIXED_NEWSTYLE | ((flags & NBD_FLAG_NO_ZEROES) !== 0 ? NBD_FLAG_C_NO_ZEROES : 0)))
    const structured = yield* exchange(session, NBD_OPT_STRUCTURED_REPLY, undefined, unexpected)
    if (structured !== undefined) return yield* session.fail(refusal(NBD_OPT_STRUCTURED_REPLY, exportName, structured.type, structured.message))
    const contexts = new Map<number, string>()
    if (queries.length > 0) {
      const refused = yield* exchange(session, NBD_OPT_SET_META_CONTEXT, encodeMetaContextRequest(exportName, queries), (type, payload) =>
        type !== NBD_REP_META_CONTEXT ? unexpected(type) : Either.map(decodeMetaContext(payload), ({ id, name }) => void contexts.set(id, name))
      )
      // A server without block status: no contexts, which blockStatus then says.
      if (refused !== undefined) {
        if (refused.type !== NBD_REP_ERR_UNSUP) return yield* session.fail(refusal(NBD_OPT_SET_META_CONTEXT, exportName, refused.type, refused.message))
        contexts.clear()
      }
    }
    let size: number | undefined
    let minimum = 1
    let maximum = 32 * MiB
    const go = yield* exchange(session, NBD_OPT_GO, encodeInfoRequest(exportName, [NBD_INFO_EXPORT, NBD_INFO_BLOCK_SIZE]), (type, payload) => {
      if (type !== NBD_REP_INFO) return unexpected(type)
      return Either.map(decodeInfo(payload), (info) => {
        if (info.info === "export") size = info.size
        if (info.info === "block-size") ({ minimum, maximum } = info)
      })
    })
    if (go !== undefined) return yield* session.fail(refusal(NBD_OPT_GO, exportName, go.type, go.message))
    if (size === undefined) return yield* session.fail("the server broke the protocol: it did not send the export's size (NBD_INFO_EXPORT)")
    return { size, minimum, maximum, contexts }
  })

/**
 * Connects (TCP or Unix socket), does the fixed newstyle handshake,
 * NBD_OPT_STRUCTURED_REPLY, NBD_OPT_SET_META_CONTEXT with the requested
 * contexts (only when some are asked for), then NBD_OPT_GO for the export
 * (asking for NBD_INFO_EXPORT and NBD_INFO_BLOCK_SIZE). Released at the end
 * of the scope: NBD_CMD_DISC, then the socket is closed.
 */
export const connect = (uri: string, options: ConnectOptions = {}): Effect.Effect<NbdConnection, NbdError, Scope.Scope> =>
  Effect.gen(function* () {
    const address = parseNbdUri(uri)
    if (Either.isLeft(address)) return yield* Effect.fail(new NbdError({ uri, reason: address.left }))
    const maxInFlight = options.maxInFlight ?? 8
    if (!Number.isInteger(maxInFlight) || maxInFlight < 1) return yield* Effect.fail(new NbdError({ uri, reason: `maxInFlight must be a positive integer, not ${maxInFlight}` }))
    const timeout = Duration.decode(options.handshakeTimeout ?? Duration.seconds(30))
    const session = yield* Effect.acquireRelease(Effect.sync(() => new Session(uri, address.right)), (s) => s.release)
    const agreed = yield* negotiate(session, address.right.exportName, options.contexts ?? []).pipe(
      Effect.timeoutFail({ duration: timeout, onTimeout: () => session.error(`the server did not finish the handshake within ${Duration.format(timeout)}`) }),
      Effect.onError(() => session.release)
    )
    const { size, minimum } = agreed
    const parser = session.startTransmission(agreed.contexts)
    const contextIds = new Map([...agreed.contexts].map(([id, name]) => [name, id] as const))
    const maxRead = Math.max(minimum, alignDown(Math.min(agreed.maximum, MAX_READ_REQUEST), minimum))
    const slots = yield* Effect.makeSemaphore(maxInFlight)
    const unusable = () => session.fail(session.ending!(undefined))
    const settled = (resume: (effect: Effect.Effect<void, NbdError>) => void) => (failure: string | undefined) =>
      resume(failure === undefined ? Effect.void : session.fail(failure))

    /** One NBD_CMD_READ of [from, to), the bytes in [clipStart, clipEnd) going to buffer[at - base]. */
    const readRequest = (buffer: Uint8Array, base: number, from: number, to: number, clipStart: number, clipEnd: number) =>
      slots.withPermits(1)(Effect.async<void, NbdError>((resume) => {
        if (session.ending !== undefined) return resume(unusable())
        const request = new ReadRequest(parser.nextCookie(), from, to - from, Math.max(from, clipStart), settled(resume), buffer, base, clipStart, clipEnd)
        parser.submit(request)
        return Effect.sync(() => request.abandon())
      }))

    const read = (offset: number, buffer: Uint8Array): Effect.Effect<void, NbdError> => {
      const end = offset + buffer.length
      if (!Number.isSafeInteger(offset) || offset < 0 || end > size) return session.fail(`a read of ${buffer.length} bytes at offset ${offset} is outside the export (${size} bytes)`)
      if (buffer.length === 0) return Effect.void
      // Requests start and end on the server's minimum block; only the asked bytes are copied.
      const first = alignDown(offset, minimum)
      const last = Math.min(alignUp(end, minimum), size)
      const piece = (from: number) => readRequest(buffer, offset, from, Math.min(from + maxRead, last), offset, end)
      if (last - first <= maxRead) return piece(first)
      const starts = Array.from({ length: Math.ceil((last - first) / maxRead) }, (_, i) => first + i * maxRead)
      return Effect.forEach(starts, piece, { concurrency: maxInFlight, discard: true })
    }

    /** One NBD_CMD_BLOCK_STATUS of [from, from + length): the server's extents for the context, as sent. */
    const statusRequest = (contextId: number, from: number, length: number) =>
      slots.withPermits(1)(Effect.async<ReadonlyArray<BlockStatusExtent>, NbdError>((resume) => {
        if (session.ending !== undefined) return resume(unusable())
        const request: StatusRequest = new StatusRequest(parser.nextCookie(), from, length, contextId, (failure) =>
          resume(failure === undefined ? Effect.succeed(request.extents) : session.fail(failure))
        )
        parser.submit(request)
        return Effect.sync(() => request.abandon())
      }))

    const blockStatus = (context: string, start: number, end: number) =>
      Effect.gen(function* () {
        const id = contextIds.get(context)
        if (id === undefined) {
          const agreedNames = [...contextIds.keys()].map((name) => JSON.stringify(name)).join(", ")
          return yield* session.fail(`the meta context ${JSON.stringify(clip(context))} was not negotiated (the server agreed to ${agreedNames || "none"})`)
        }
        if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || end > size) {
          return yield* session.fail(`block status of [${start}, ${end}) is outside the export (${size} bytes)`)
        }
        const extents: Array<{ start: number; end: number; flags: number }> = []
        let at = start
        while (at < end) {
          const from = alignDown(at, minimum)
          const to = Math.min(alignUp(Math.min(end, from + MAX_STATUS_REQUEST), minimum), size)
          const before = at
          for (const extent of yield* statusRequest(id, from, to - from)) {
            const s = Math.max(extent.start, at)
            const e = Math.min(extent.end, end)
            if (e <= s) continue
            const last = extents[extents.length - 1]
            if (last !== undefined && last.end === s && last.flags === extent.flags) last.end = e
            else extents.push({ start: s, end: e, flags: extent.flags })
            at = e
          }
          if (at === before) return yield* session.fail(`the server's block status reply for offset ${before} made no progress`)
        }
        return extents
      })

    return {
      uri,
      size,
      contexts: [...contextIds.keys()],
      blockSize: { minimum, maximum: agreed.maximum },
      read,
      blockStatus
    } satisfies NbdConnection
  })
