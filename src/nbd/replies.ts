/**
 * The client's side of transmission phase: the requests in flight, and a
 * push-based parser of the server's replies fed straight from the socket's
 * reads. Data is copied from the socket's buffer into the caller's once its
 * chunk has been checked against the request (inside it, no overlap with
 * earlier chunks); a request that was abandoned (its read interrupted) or
 * has failed keeps its cookie until the reply is done, and what still
 * arrives for it is discarded. A reply that breaks the protocol is a hard
 * disconnect, told to every request in flight.
 */
import { copyInto } from "../codec/native.js"
import {
  BLOCK_DESCRIPTOR_LENGTH, decodeErrorChunk, decodeHole, decodeReplyHeader, encodeRequest, errnoName, isErrorChunk, MAX_STRING_LENGTH,
  NBD_CMD_BLOCK_STATUS, NBD_CMD_READ, NBD_ESHUTDOWN, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_BLOCK_STATUS, NBD_REPLY_TYPE_NONE,
  NBD_REPLY_TYPE_OFFSET_DATA, NBD_REPLY_TYPE_OFFSET_HOLE, readU32, readU64, replyHeaderLength, STRUCTURED_REPLY_HEADER_LENGTH
} from "./protocol.js"

/** How the connection ended, in words, given what a request was doing ("a read at offset N") or undefined for a later call. */
export type Ending = (during: string | undefined) => string

/** Told once: undefined when the reply is complete and good, else why not. */
type Settle = (failure: string | undefined) => void

/** Block status chunks are refused past 2^20 descriptors (the protocol's SHOULD), so that a claimed length cannot make us hoard. */
const MAX_STATUS_CHUNK = 4 + BLOCK_DESCRIPTOR_LENGTH * 2 ** 20
/** An error chunk: errno, message length, a message of at most 4096 bytes, an offset, and room for fields of unknown error types. */
const MAX_ERROR_CHUNK = 6 + MAX_STRING_LENGTH + 8 + 256

/** The parts of a request its reply has covered, as sorted disjoint [start, end) runs; overlaps are refused. */
class Coverage {
  private readonly starts: Array<number> = []
  private readonly ends: Array<number> = []
  total = 0

  /** Adds [start, end); false if it overlaps what is already covered. */
  add(start: number, end: number): boolean {
    const { starts, ends } = this
    let lo = 0
    let hi = starts.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (starts[mid]! < start) lo = mid + 1
      else hi = mid
    }
    if ((lo > 0 && ends[lo - 1]! > start) || (lo < starts.length && starts[lo]! < end)) return false
    this.total += end - start
    const joinsBefore = lo > 0 && ends[lo - 1] === start
    const joinsAfter = lo < starts.length && starts[lo] === end
    if (joinsBefore && joinsAfter) {
      ends[lo - 1] = ends[lo]!
      starts.splice(lo, 1)
      ends.splice(lo, 1)
    } else if (joinsBefore) ends[lo - 1] = end
    else if (joinsAfter) starts[lo] = start
    else {
      starts.splice(lo, 0, start)
      ends.splice(lo, 0, end)
    }
    return true
  }
}

/** A request in flight. */
abstract class Request {
  private settle: Settle | undefined
  /** chunks of its reply so far */
  chunks = 0

  constructor(
    readonly cookie: number,
    readonly command: number,
    readonly offset: number,
    readonly length: number,
    /** how messages name it, e.g. "a read at offset 4096" */
    readonly describe: string,
    settle: Settle
  ) {
    this.settle = settle
  }

  get end(): number {
    return this.offset + this.length
  }

  /** Tells the caller, once; later replies for it are only parsed. */
  finish(failure: string | undefined): void {
    const settle = this.settle
    this.abandon()
    settle?.(failure)
  }

  /** The caller no longer waits (interrupted): nothing more is told or written. */
  abandon(): void {
    this.settle = undefined
  }

  /** The reply is done: whether it was whole. */
  abstract complete(): void
}

/** An NBD_CMD_READ: the bytes of [clipStart, clipEnd) it receives go to target[at - base]. */
export class ReadRequest extends Request {
  readonly coverage = new Coverage()
  private target: Uint8Array | undefined

  constructor(
    cookie: number,
    offset: number,
    length: number,
    describedAt: number,
    settle: Settle,
    target: Uint8Array,
    private readonly base: number,
    private readonly clipStart: number,
    private readonly clipEnd: number
  ) {
    super(cookie, NBD_CMD_READ, offset, length, `a read at offset ${describedAt}`, settle)
    this.target = target
  }

  override abandon(): void {
    super.abandon()
    this.target = undefined
  }

  /** Copies `n` bytes of `bytes` from `at`, the export's bytes from `position` on, as far as they are wanted. */
  copy(bytes: Uint8Array, at: number, position: number, n: number): void {
    if (this.target === undefined) return
    const from = Math.max(position, this.clipStart)
    const to = Math.min(position + n, this.clipEnd)
    // Not target.set: into a slot (shared memory) that goes byte by byte, the data being misaligned after its header.
    if (from < to) copyInto(this.target, from - this.base, bytes, at + from - position, at + to - position)
  }

  /** Zeros for the export's bytes [position, position + n), as far as they are wanted. */
  zero(position: number, n: number): void {
    if (this.target === undefined) return
    const from = Math.max(position, this.clipStart)
    const to = Math.min(position + n, this.clipEnd)
    if (from < to) this.target.fill(0, from - this.base, to - this.base)
  }

  complete(): void {
    if (this.coverage.total !== this.length) this.finish(`the server's reply to ${this.describe} covered ${this.coverage.total} of its ${this.length} bytes`)
    else this.finish(undefined)
  }
}

/** An NBD_CMD_BLOCK_STATUS for one context: the extents of that context's chunk, as the server sent them. */
export class StatusRequest extends Request {
  readonly extents: Array<{ readonly start: number; readonly end: number; readonly flags: number }> = []
  /** the contexts whose chunk has come */
  readonly seen = new Set<number>()

  constructor(cookie: number, offset: number, length: number, readonly contextId: number, settle: Settle) {
    super(cookie, NBD_CMD_BLOCK_STATUS, offset, length, `a block status request at offset ${offset}`, settle)
  }

  complete(): void {
    if (!this.seen.has(this.contextId)) this.finish(`the server's reply to ${this.describe} has no extents for the context asked for`)
    else this.finish(undefined)
  }
}

/** What the parser needs of the connection. */
export interface ParserHost {
  readonly write: (bytes: Uint8Array) => void
  /** a hard disconnect, the server having broken the protocol */
  readonly violation: (reason: string) => void
  /** a soft disconnect, the server having answered ESHUTDOWN */
  readonly shutdown: () => void
}

const HEADER = 0
const COLLECT = 1
const DATA = 2
const STATUS = 3

/** The requests in flight, and the state machine that parses the replies to them. */
export class ReplyParser {
  private readonly pending = new Map<number, Request>()
  private cookies = 1
  private ended = false
  private state = HEADER
  private readonly head = new Uint8Array(STRUCTURED_REPLY_HEADER_LENGTH)
  private headFill = 0
  private headNeed = 4
  /** small payloads (offsets, holes, errors, a descriptor cut by a read) collect here */
  private readonly small = new Uint8Array(MAX_ERROR_CHUNK)
  private smallFill = 0
  private smallNeed = 0
  private afterCollect: (bytes: Uint8Array) => void = () => {}
  /** the request the current reply is for */
  private current: Request | undefined
  private chunkType = 0
  private chunkDone = false
  /** bytes of payload left in DATA / STATUS */
  private remaining = 0
  /** the export offset of the next data byte, or of the next extent */
  private position = 0
  private statusContext = 0

  constructor(private readonly contexts: ReadonlyMap<number, string>, private readonly host: ParserHost) {}

  nextCookie(): number {
    return this.cookies++
  }

  submit(request: Request): void {
    this.pending.set(request.cookie, request)
    this.host.write(encodeRequest({ flags: 0, type: request.command, cookie: request.cookie, offset: request.offset, length: request.length }))
  }

  /** The connection is over: every request in flight fails with why; later bytes are ignored. */
  failAll(ending: Ending): void {
    this.ended = true
    for (const request of this.pending.values()) request.finish(ending(request.describe))
    this.pending.clear()
  }

  /** The socket's bytes [start, end) of `bytes`, which is reused after this returns. */
  push(bytes: Uint8Array, start: number, end: number): void {
    let at = start
    while (at < end && !this.ended) {
      if (this.state === DATA) {
        const n = Math.min(this.remaining, end - at)
        ;(this.current as ReadRequest).copy(bytes, at, this.position, n)
        this.position += n
        this.remaining -= n
        at += n
        if (this.remaining === 0) this.endChunk()
      } else if (this.state === HEADER) {
        const n = Math.min(this.headNeed - this.headFill, end - at)
        this.head.set(bytes.subarray(at, at + n), this.headFill)
        this.headFill += n
        at += n
        if (this.headFill < this.headNeed) continue
        if (this.headNeed === 4) {
          const length = replyHeaderLength(readU32(this.head, 0))
          if (length === undefined) return this.broke(`a reply with the wrong magic 0x${readU32(this.head, 0).toString(16).padStart(8, "0")}`)
          this.headNeed = length
        } else this.onHeader()
      } else if (this.state === COLLECT) {
        const n = Math.min(this.smallNeed - this.smallFill, end - at)
        this.small.set(bytes.subarray(at, at + n), this.smallFill)
        this.smallFill += n
        at += n
        if (this.smallFill === this.smallNeed) this.afterCollect(this.small.subarray(0, this.smallNeed))
      } else if (this.smallFill > 0 || end - at < BLOCK_DESCRIPTOR_LENGTH) {
        // STATUS, a descriptor cut between two reads
        const n = Math.min(BLOCK_DESCRIPTOR_LENGTH - this.smallFill, end - at)
        this.small.set(bytes.subarray(at, at + n), this.smallFill)
        this.smallFill += n
        at += n
        if (this.smallFill === BLOCK_DESCRIPTOR_LENGTH) {
          this.smallFill = 0
          this.descriptor(this.small, 0)
        }
      } else {
        this.descriptor(bytes, at)
        at += BLOCK_DESCRIPTOR_LENGTH
      }
    }
  }

  private broke(what: string): void {
    const whose = this.current === undefined ? "" : `its reply to ${this.current.describe} has `
    this.host.violation(`the server broke the protocol: ${whose}${what}`)
  }

  private collect(length: number, then: (bytes: Uint8Array) => void): void {
    this.state = COLLECT
    this.smallFill = 0
    this.smallNeed = length
    this.afterCollect = then
  }

  private onHeader(): void {
    this.headFill = 0
    this.headNeed = 4
    const decoded = decodeReplyHeader(this.head)
    if (decoded._tag === "Left") return this.broke(decoded.left)
    const header = decoded.right
    const request = this.pending.get(header.cookie)
    if (request === undefined) return this.broke(`a reply for cookie ${header.cookie}, which no request in flight has`)
    this.current = request
    if (header.reply === "simple") return this.onSimpleReply(request, header.error)
    request.chunks++
    this.chunkType = header.type
    this.chunkDone = (header.flags & NBD_REPLY_FLAG_DONE) !== 0
    const { length, type } = header
    const read = request instanceof ReadRequest
    if (type === NBD_REPLY_TYPE_NONE) {
      if (length !== 0 || !this.chunkDone) return this.broke(`a final chunk (NBD_REPLY_TYPE_NONE) of ${length} bytes${this.chunkDone ? "" : " without the DONE flag"}`)
      this.endChunk()
    } else if (type === NBD_REPLY_TYPE_OFFSET_DATA && read) {
      if (length < 9) return this.broke(`a data chunk of ${length} bytes`)
      this.collect(8, (bytes) => this.onDataOffset(request, bytes, length - 8))
    } else if (type === NBD_REPLY_TYPE_OFFSET_HOLE && read) {
      if (length !== 12) return this.broke(`a hole chunk of ${length} bytes (12 expected)`)
      this.collect(12, (bytes) => this.onHole(request, bytes))
    } else if (type === NBD_REPLY_TYPE_BLOCK_STATUS && request instanceof StatusRequest) {
      if (length < 4 + BLOCK_DESCRIPTOR_LENGTH || (length - 4) % BLOCK_DESCRIPTOR_LENGTH !== 0 || length > MAX_STATUS_CHUNK) {
        return this.broke(`a block status chunk of ${length} bytes`)
      }
      this.collect(4, (bytes) => this.onStatusContext(request, readU32(bytes, 0), length - 4))
    } else if (isErrorChunk(type)) {
      if (length < 6 || length > MAX_ERROR_CHUNK) return this.broke(`an error chunk of ${length} bytes`)
      this.collect(length, (bytes) => this.onError(request, bytes))
    } else {
      this.broke(`a chunk of type ${type}, which does not belong there`)
    }
  }

  private onSimpleReply(request: Request, error: number): void {
    if (request.chunks > 0) return this.broke("a simple reply after structured chunks")
    this.chunkDone = true
    if (error !== 0) return this.onErrno(request, error, "", request.describe)
    // A read answered by a simple reply (structured replies forbid it, but the payload's length is known): its data follows.
    if (!(request instanceof ReadRequest)) return this.broke("a simple reply without an error, where structured chunks of extents were due")
    request.coverage.add(request.offset, request.end)
    this.position = request.offset
    this.remaining = request.length
    this.state = DATA
  }

  private onDataOffset(request: ReadRequest, bytes: Uint8Array, length: number): void {
    const offset = readU64(bytes, 0)
    if (offset === undefined || offset < request.offset || offset + length > request.end) {
      return this.broke(`data at [${offset ?? "2^53+"}, ${(offset ?? 0) + length}), outside the request [${request.offset}, ${request.end})`)
    }
    if (!request.coverage.add(offset, offset + length)) return this.broke(`data at [${offset}, ${offset + length}) that overlaps an earlier chunk`)
    this.position = offset
    this.remaining = length
    this.state = DATA
  }

  private onHole(request: ReadRequest, bytes: Uint8Array): void {
    const hole = decodeHole(bytes)
    if (hole._tag === "Left") return this.broke(hole.left)
    const { offset, length } = hole.right
    if (offset < request.offset || offset + length > request.end) return this.broke(`a hole at [${offset}, ${offset + length}), outside the request [${request.offset}, ${request.end})`)
    if (!request.coverage.add(offset, offset + length)) return this.broke(`a hole at [${offset}, ${offset + length}) that overlaps an earlier chunk`)
    request.zero(offset, length)
    this.endChunk()
  }

  private onStatusContext(request: StatusRequest, id: number, length: number): void {
    if (!this.contexts.has(id)) return this.broke(`extents for context id ${id}, which was not negotiated`)
    if (request.seen.has(id)) return this.broke(`two chunks of extents for ${this.contexts.get(id)}`)
    request.seen.add(id)
    this.statusContext = id
    this.position = request.offset
    this.remaining = length
    this.smallFill = 0
    this.state = STATUS
  }

  private descriptor(bytes: Uint8Array, at: number): void {
    const request = this.current as StatusRequest
    const length = readU32(bytes, at)
    this.remaining -= BLOCK_DESCRIPTOR_LENGTH
    if (length === 0) return this.broke("an extent of length 0")
    if (this.position >= request.end) return this.broke(`extents past the end of the request [${request.offset}, ${request.end})`)
    if (this.statusContext === request.contextId) request.extents.push({ start: this.position, end: this.position + length, flags: readU32(bytes, at + 4) })
    this.position += length
    if (this.remaining === 0) this.endChunk()
  }

  private onError(request: Request, bytes: Uint8Array): void {
    const decoded = decodeErrorChunk(this.chunkType, bytes)
    if (decoded._tag === "Left") return this.broke(decoded.left)
    const { errno, message, offset } = decoded.right
    if (offset !== undefined && (offset < request.offset || offset >= request.end)) {
      return this.broke(`an error at offset ${offset}, outside the request [${request.offset}, ${request.end})`)
    }
    const where = offset === undefined ? request.describe : `${request instanceof ReadRequest ? "a read" : "a block status request"} at offset ${offset}`
    this.onErrno(request, errno, message, where)
  }

  private onErrno(request: Request, errno: number, message: string, where: string): void {
    // ESHUTDOWN asks for a soft disconnect, which ends every request.
    if (errno === NBD_ESHUTDOWN) return this.host.shutdown()
    request.finish(`the server answered ${where} with ${errnoName(errno)}${message === "" ? "" : `: ${JSON.stringify(message)}`}`)
    this.endChunk()
  }

  private endChunk(): void {
    this.state = HEADER
    const request = this.current
    this.current = undefined
    if (request !== undefined && this.chunkDone) {
      this.pending.delete(request.cookie)
      request.complete()
    }
  }
}
