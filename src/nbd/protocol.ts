/**
 * The NBD protocol's wire format (doc/proto.md of NetworkBlockDevice/nbd),
 * fixed newstyle with structured replies, no extended headers: the
 * constants, encoders for what a client sends, and decoders for what a
 * server answers. Pure functions over bytes, no I/O, shared by the client
 * and a later server. Every u64 is read as two u32 halves and refused
 * (`undefined`) past Number.MAX_SAFE_INTEGER, so no BigInt is needed.
 */
import { Either } from "effect"

/** The IANA port of NBD over TCP. */
export const NBD_DEFAULT_PORT = 10809

/** The server's greeting starts with these 8 bytes... */
export const NBD_INIT_MAGIC = Uint8Array.from(Buffer.from("NBDMAGIC", "latin1"))
/** ...then these (newstyle), which also start every option a client sends. */
export const NBD_OPTS_MAGIC = Uint8Array.from(Buffer.from("IHAVEOPT", "latin1"))
/** The second magic of an oldstyle server (0x00420281861253), whose greeting carries no options. */
export const NBD_OLDSTYLE_MAGIC = Uint8Array.of(0x00, 0x00, 0x42, 0x02, 0x81, 0x86, 0x12, 0x53)
/** The 64-bit magic of an option reply, 0x0003e889045565a9, as two halves. */
export const NBD_REP_MAGIC_HIGH = 0x0003e889
export const NBD_REP_MAGIC_LOW = 0x045565a9
/** A transmission request. */
export const NBD_REQUEST_MAGIC = 0x25609513
/** A simple reply. */
export const NBD_SIMPLE_REPLY_MAGIC = 0x67446698
/** A structured reply chunk. */
export const NBD_STRUCTURED_REPLY_MAGIC = 0x668e33ef

/** Handshake flags (server) and client flags. */
export const NBD_FLAG_FIXED_NEWSTYLE = 1
export const NBD_FLAG_NO_ZEROES = 2
export const NBD_FLAG_C_FIXED_NEWSTYLE = 1
export const NBD_FLAG_C_NO_ZEROES = 2

/** Transmission flags, from NBD_INFO_EXPORT. */
export const NBD_FLAG_HAS_FLAGS = 1 << 0
export const NBD_FLAG_READ_ONLY = 1 << 1
export const NBD_FLAG_SEND_FLUSH = 1 << 2
export const NBD_FLAG_SEND_FUA = 1 << 3
export const NBD_FLAG_ROTATIONAL = 1 << 4
export const NBD_FLAG_SEND_TRIM = 1 << 5
export const NBD_FLAG_SEND_WRITE_ZEROES = 1 << 6
export const NBD_FLAG_SEND_DF = 1 << 7
export const NBD_FLAG_CAN_MULTI_CONN = 1 << 8
export const NBD_FLAG_SEND_CACHE = 1 << 10
export const NBD_FLAG_SEND_FAST_ZERO = 1 << 11

/** Options. */
export const NBD_OPT_EXPORT_NAME = 1
export const NBD_OPT_ABORT = 2
export const NBD_OPT_LIST = 3
export const NBD_OPT_STARTTLS = 5
export const NBD_OPT_INFO = 6
export const NBD_OPT_GO = 7
export const NBD_OPT_STRUCTURED_REPLY = 8
export const NBD_OPT_LIST_META_CONTEXT = 9
export const NBD_OPT_SET_META_CONTEXT = 10

const optionNames: Record<number, string> = {
  [NBD_OPT_EXPORT_NAME]: "NBD_OPT_EXPORT_NAME",
  [NBD_OPT_ABORT]: "NBD_OPT_ABORT",
  [NBD_OPT_LIST]: "NBD_OPT_LIST",
  [NBD_OPT_STARTTLS]: "NBD_OPT_STARTTLS",
  [NBD_OPT_INFO]: "NBD_OPT_INFO",
  [NBD_OPT_GO]: "NBD_OPT_GO",
  [NBD_OPT_STRUCTURED_REPLY]: "NBD_OPT_STRUCTURED_REPLY",
  [NBD_OPT_LIST_META_CONTEXT]: "NBD_OPT_LIST_META_CONTEXT",
  [NBD_OPT_SET_META_CONTEXT]: "NBD_OPT_SET_META_CONTEXT"
}

/** An option's name for messages, e.g. 7 → "NBD_OPT_GO". */
export const optionName = (option: number): string => optionNames[option] ?? `option ${option}`

/** Option reply types; errors have bit 31 set. */
export const NBD_REP_ACK = 1
export const NBD_REP_SERVER = 2
export const NBD_REP_INFO = 3
export const NBD_REP_META_CONTEXT = 4
export const NBD_REP_FLAG_ERROR = 0x80000000
export const NBD_REP_ERR_UNSUP = NBD_REP_FLAG_ERROR + 1
export const NBD_REP_ERR_POLICY = NBD_REP_FLAG_ERROR + 2
export const NBD_REP_ERR_INVALID = NBD_REP_FLAG_ERROR + 3
export const NBD_REP_ERR_PLATFORM = NBD_REP_FLAG_ERROR + 4
export const NBD_REP_ERR_TLS_REQD = NBD_REP_FLAG_ERROR + 5
export const NBD_REP_ERR_UNKNOWN = NBD_REP_FLAG_ERROR + 6
export const NBD_REP_ERR_SHUTDOWN = NBD_REP_FLAG_ERROR + 7
export const NBD_REP_ERR_BLOCK_SIZE_REQD = NBD_REP_FLAG_ERROR + 8
export const NBD_REP_ERR_TOO_BIG = NBD_REP_FLAG_ERROR + 9

const replyErrorNames: Record<number, string> = {
  [NBD_REP_ERR_UNSUP]: "NBD_REP_ERR_UNSUP",
  [NBD_REP_ERR_POLICY]: "NBD_REP_ERR_POLICY",
  [NBD_REP_ERR_INVALID]: "NBD_REP_ERR_INVALID",
  [NBD_REP_ERR_PLATFORM]: "NBD_REP_ERR_PLATFORM",
  [NBD_REP_ERR_TLS_REQD]: "NBD_REP_ERR_TLS_REQD",
  [NBD_REP_ERR_UNKNOWN]: "NBD_REP_ERR_UNKNOWN",
  [NBD_REP_ERR_SHUTDOWN]: "NBD_REP_ERR_SHUTDOWN",
  [NBD_REP_ERR_BLOCK_SIZE_REQD]: "NBD_REP_ERR_BLOCK_SIZE_REQD",
  [NBD_REP_ERR_TOO_BIG]: "NBD_REP_ERR_TOO_BIG"
}

/** Whether an option reply type is an error (bit 31). */
export const isOptionReplyError = (type: number): boolean => type >= NBD_REP_FLAG_ERROR

/** An option reply error's name for messages, e.g. NBD_REP_ERR_UNKNOWN. */
export const optionReplyErrorName = (type: number): string => replyErrorNames[type] ?? `error reply ${type - NBD_REP_FLAG_ERROR}`

/** Information types of NBD_REP_INFO. */
export const NBD_INFO_EXPORT = 0
export const NBD_INFO_NAME = 1
export const NBD_INFO_DESCRIPTION = 2
export const NBD_INFO_BLOCK_SIZE = 3

/** Commands. */
export const NBD_CMD_READ = 0
export const NBD_CMD_WRITE = 1
export const NBD_CMD_DISC = 2
export const NBD_CMD_FLUSH = 3
export const NBD_CMD_TRIM = 4
export const NBD_CMD_CACHE = 5
export const NBD_CMD_WRITE_ZEROES = 6
export const NBD_CMD_BLOCK_STATUS = 7

/** Command flags. */
export const NBD_CMD_FLAG_FUA = 1 << 0
export const NBD_CMD_FLAG_NO_HOLE = 1 << 1
export const NBD_CMD_FLAG_DF = 1 << 2
export const NBD_CMD_FLAG_REQ_ONE = 1 << 3
export const NBD_CMD_FLAG_FAST_ZERO = 1 << 4

/** Structured reply flag: the last chunk of a reply. */
export const NBD_REPLY_FLAG_DONE = 1

/** Structured reply chunk types; error types have bit 15 set. */
export const NBD_REPLY_TYPE_NONE = 0
export const NBD_REPLY_TYPE_OFFSET_DATA = 1
export const NBD_REPLY_TYPE_OFFSET_HOLE = 2
export const NBD_REPLY_TYPE_BLOCK_STATUS = 5
export const NBD_REPLY_TYPE_ERROR = (1 << 15) + 1
export const NBD_REPLY_TYPE_ERROR_OFFSET = (1 << 15) + 2

/** Whether a chunk type is an error chunk (bit 15), known or not. */
export const isErrorChunk = (type: number): boolean => (type & 0x8000) !== 0

/** base:allocation: not allocated. */
export const NBD_STATE_HOLE = 1
/** base:allocation: reads as zeros. */
export const NBD_STATE_ZERO = 2
/** qemu:dirty-bitmap:NAME: changed since the bitmap was started. */
export const NBD_STATE_DIRTY = 1

/** Error numbers of replies. */
export const NBD_EPERM = 1
export const NBD_EIO = 5
export const NBD_ENOMEM = 12
export const NBD_EINVAL = 22
export const NBD_ENOSPC = 28
export const NBD_EOVERFLOW = 75
export const NBD_ENOTSUP = 95
export const NBD_ESHUTDOWN = 108

const errnoNames: Record<number, string> = {
  [NBD_EPERM]: "EPERM",
  [NBD_EIO]: "EIO",
  [NBD_ENOMEM]: "ENOMEM",
  [NBD_EINVAL]: "EINVAL",
  [NBD_ENOSPC]: "ENOSPC",
  [NBD_EOVERFLOW]: "EOVERFLOW",
  [NBD_ENOTSUP]: "ENOTSUP",
  [NBD_ESHUTDOWN]: "ESHUTDOWN"
}

/** An error number's name, e.g. 5 → "EIO"; one the protocol does not define → "error 42". */
export const errnoName = (errno: number): string => errnoNames[errno] ?? `error ${errno}`

/** Lengths of the fixed parts. */
export const GREETING_LENGTH = 18
export const OPTION_REPLY_HEADER_LENGTH = 20
export const REQUEST_LENGTH = 28
export const SIMPLE_REPLY_HEADER_LENGTH = 16
export const STRUCTURED_REPLY_HEADER_LENGTH = 20
/** Strings (export names, context names, messages) are at most this many bytes. */
export const MAX_STRING_LENGTH = 4096

/** A u32 at `at`, big-endian. */
export const readU32 = (bytes: Uint8Array, at: number): number =>
  bytes[at]! * 0x1000000 + ((bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!)

/** A u16 at `at`, big-endian. */
export const readU16 = (bytes: Uint8Array, at: number): number => (bytes[at]! << 8) | bytes[at + 1]!

/** A u64 at `at`, big-endian; undefined past Number.MAX_SAFE_INTEGER. */
export const readU64 = (bytes: Uint8Array, at: number): number | undefined => {
  const high = readU32(bytes, at)
  return high > 0x1fffff ? undefined : high * 0x100000000 + readU32(bytes, at + 4)
}

const writeU32 = (bytes: Uint8Array, at: number, value: number): void => {
  bytes[at] = value >>> 24
  bytes[at + 1] = value >>> 16
  bytes[at + 2] = value >>> 8
  bytes[at + 3] = value
}

const writeU16 = (bytes: Uint8Array, at: number, value: number): void => {
  bytes[at] = value >>> 8
  bytes[at + 1] = value
}

/** Writes a u64 given as a safe integer (the caller checks it is one). */
const writeU64 = (bytes: Uint8Array, at: number, value: number): void => {
  writeU32(bytes, at, Math.floor(value / 0x100000000))
  writeU32(bytes, at + 4, value >>> 0)
}

const utf8 = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text, "utf8"))

// ---------------------------------------------------------------- handshake

/** What the greeting says: the server's handshake flags. */
export interface Greeting {
  readonly handshakeFlags: number
}

/** The server's first 18 bytes: "NBDMAGIC" "IHAVEOPT" and u16 handshake flags. */
export const decodeGreeting = (bytes: Uint8Array): Either.Either<Greeting, string> => {
  if (bytes.length < GREETING_LENGTH) return Either.left("the greeting is too short")
  if (!startsWith(bytes, NBD_INIT_MAGIC, 0)) return Either.left("it is not an NBD server (its greeting has no NBDMAGIC)")
  if (startsWith(bytes, NBD_OLDSTYLE_MAGIC, 8)) return Either.left("the server speaks only the oldstyle protocol, which has no options")
  if (!startsWith(bytes, NBD_OPTS_MAGIC, 8)) return Either.left("it is not an NBD server (its greeting has no IHAVEOPT)")
  return Either.right({ handshakeFlags: readU16(bytes, 16) })
}

const startsWith = (bytes: Uint8Array, prefix: Uint8Array, at: number): boolean => prefix.every((b, i) => bytes[at + i] === b)

/** The client's flags, answering the greeting. */
export const encodeClientFlags = (flags: number): Uint8Array => {
  const bytes = new Uint8Array(4)
  writeU32(bytes, 0, flags)
  return bytes
}

/** An option: "IHAVEOPT", u32 option, u32 length, data. */
export const encodeOption = (option: number, data: Uint8Array = new Uint8Array(0)): Uint8Array => {
  const bytes = new Uint8Array(16 + data.length)
  bytes.set(NBD_OPTS_MAGIC, 0)
  writeU32(bytes, 8, option)
  writeU32(bytes, 12, data.length)
  bytes.set(data, 16)
  return bytes
}

/** The data of NBD_OPT_INFO / NBD_OPT_GO: the export name and the information types asked for. */
export const encodeInfoRequest = (exportName: string, infos: ReadonlyArray<number>): Uint8Array => {
  const name = utf8(exportName)
  const bytes = new Uint8Array(4 + name.length + 2 + 2 * infos.length)
  writeU32(bytes, 0, name.length)
  bytes.set(name, 4)
  writeU16(bytes, 4 + name.length, infos.length)
  infos.forEach((info, i) => writeU16(bytes, 6 + name.length + 2 * i, info))
  return bytes
}

/** The data of NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT: the export name and the queries. */
export const encodeMetaContextRequest = (exportName: string, queries: ReadonlyArray<string>): Uint8Array => {
  const name = utf8(exportName)
  const encoded = queries.map(utf8)
  const bytes = new Uint8Array(8 + name.length + encoded.reduce((n, q) => n + 4 + q.length, 0))
  writeU32(bytes, 0, name.length)
  bytes.set(name, 4)
  writeU32(bytes, 4 + name.length, encoded.length)
  let at = 8 + name.length
  for (const query of encoded) {
    writeU32(bytes, at, query.length)
    bytes.set(query, at + 4)
    at += 4 + query.length
  }
  return bytes
}

/** An option reply's header: the option it answers, its type and its payload's length. */
export interface OptionReplyHeader {
  readonly option: number
  readonly type: number
  readonly length: number
}

/** The 20-byte header of an option reply. */
export const decodeOptionReplyHeader = (bytes: Uint8Array): Either.Either<OptionReplyHeader, string> =>
  readU32(bytes, 0) !== NBD_REP_MAGIC_HIGH || readU32(bytes, 4) !== NBD_REP_MAGIC_LOW
    ? Either.left("an option reply has the wrong magic")
    : Either.right({ option: readU32(bytes, 8), type: readU32(bytes, 12), length: readU32(bytes, 16) })

/** An NBD_REP_INFO payload, the kinds a client uses (others are to be ignored). */
export type Info =
  | { readonly info: "export"; readonly size: number; readonly transmissionFlags: number }
  | { readonly info: "block-size"; readonly minimum: number; readonly preferred: number; readonly maximum: number }
  | { readonly info: "other"; readonly type: number }

/** The payload of an NBD_REP_INFO reply, checked: sizes exact, the export size a safe integer, block sizes consistent. */
export const decodeInfo = (payload: Uint8Array): Either.Either<Info, string> => {
  if (payload.length < 2) return Either.left(`an NBD_REP_INFO reply of ${payload.length} bytes`)
  const type = readU16(payload, 0)
  if (type === NBD_INFO_EXPORT) {
    if (payload.length !== 12) return Either.left(`an NBD_INFO_EXPORT of ${payload.length} bytes (12 expected)`)
    const size = readU64(payload, 2)
    if (size === undefined) return Either.left("the export's size is too large (past 2^53 bytes)")
    return Either.right({ info: "export", size, transmissionFlags: readU16(payload, 10) })
  }
  if (type === NBD_INFO_BLOCK_SIZE) {
    if (payload.length !== 14) return Either.left(`an NBD_INFO_BLOCK_SIZE of ${payload.length} bytes (14 expected)`)
    const minimum = readU32(payload, 2)
    const preferred = readU32(payload, 6)
    const maximum = readU32(payload, 10)
    const powerOfTwo = (n: number) => n > 0 && (n & (n - 1)) === 0
    if (!powerOfTwo(minimum) || minimum > 65536) return Either.left(`a minimum block size of ${minimum} (a power of 2 up to 64 KiB expected)`)
    if (!powerOfTwo(preferred) || preferred < minimum) return Either.left(`a preferred block size of ${preferred} (minimum ${minimum})`)
    if (maximum < minimum) return Either.left(`a maximum payload of ${maximum}, below the minimum block size ${minimum}`)
    return Either.right({ info: "block-size", minimum, preferred, maximum })
  }
  return Either.right({ info: "other", type })
}

/** A context the server selected (NBD_REP_META_CONTEXT): its id for block status replies, and its name. */
export interface MetaContext {
  readonly id: number
  readonly name: string
}

/** The payload of an NBD_REP_META_CONTEXT reply. */
export const decodeMetaContext = (payload: Uint8Array): Either.Either<MetaContext, string> =>
  payload.length < 5 || payload.length > 4 + MAX_STRING_LENGTH
    ? Either.left(`an NBD_REP_META_CONTEXT reply of ${payload.length} bytes`)
    : Either.right({ id: readU32(payload, 0), name: Buffer.from(payload.buffer, payload.byteOffset + 4, payload.length - 4).toString("utf8") })

/** The text of a server's message, at most MAX_STRING_LENGTH bytes of it, for display (JSON-quoted by the caller if wanted). */
export const decodeMessage = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.length, MAX_STRING_LENGTH)).toString("utf8")

// ------------------------------------------------------------- transmission

/** A request: magic, u16 flags, u16 type, u64 cookie, u64 offset, u32 length (cookie and offset safe integers, length a u32). */
export const encodeRequest = (request: {
  readonly flags: number
  readonly type: number
  readonly cookie: number
  readonly offset: number
  readonly length: number
}): Uint8Array => {
  const bytes = new Uint8Array(REQUEST_LENGTH)
  writeU32(bytes, 0, NBD_REQUEST_MAGIC)
  writeU16(bytes, 4, request.flags)
  writeU16(bytes, 6, request.type)
  writeU64(bytes, 8, request.cookie)
  writeU64(bytes, 16, request.offset)
  writeU32(bytes, 24, request.length)
  return bytes
}

/** A reply's header: a simple reply (error, cookie) or a structured chunk (flags, type, cookie, payload length). */
export type ReplyHeader =
  | { readonly reply: "simple"; readonly error: number; readonly cookie: number }
  | { readonly reply: "structured"; readonly flags: number; readonly type: number; readonly cookie: number; readonly length: number }

/** How long the header starting with `magic` is: 16 (simple), 20 (structured), or undefined for a magic that is neither. */
export const replyHeaderLength = (magic: number): number | undefined =>
  magic === NBD_SIMPLE_REPLY_MAGIC ? SIMPLE_REPLY_HEADER_LENGTH : magic === NBD_STRUCTURED_REPLY_MAGIC ? STRUCTURED_REPLY_HEADER_LENGTH : undefined

/** A reply header, `bytes` holding at least replyHeaderLength(magic) bytes. A cookie past 2^53 is refused: this client never sends one. */
export const decodeReplyHeader = (bytes: Uint8Array): Either.Either<ReplyHeader, string> => {
  const magic = readU32(bytes, 0)
  // The cookie is at 8 in both kinds of header.
  const cookie = readU64(bytes, 8)
  if (cookie === undefined) return Either.left("a reply for a cookie past 2^53, which was never sent")
  if (magic === NBD_SIMPLE_REPLY_MAGIC) return Either.right({ reply: "simple", error: readU32(bytes, 4), cookie })
  if (magic === NBD_STRUCTURED_REPLY_MAGIC) {
    return Either.right({ reply: "structured", flags: readU16(bytes, 4), type: readU16(bytes, 6), cookie, length: readU32(bytes, 16) })
  }
  return Either.left(`a reply with the wrong magic 0x${magic.toString(16).padStart(8, "0")}`)
}

/** An NBD_REPLY_TYPE_OFFSET_HOLE payload (12 bytes): zeros at [offset, offset + length). */
export const decodeHole = (payload: Uint8Array): Either.Either<{ readonly offset: number; readonly length: number }, string> => {
  if (payload.length !== 12) return Either.left(`a hole chunk of ${payload.length} bytes (12 expected)`)
  const offset = readU64(payload, 0)
  const length = readU32(payload, 8)
  if (offset === undefined) return Either.left("a hole at an offset past 2^53")
  if (length === 0) return Either.left("a hole of 0 bytes")
  return Either.right({ offset, length })
}

/** What an error chunk says: the error number, the server's message, and for NBD_REPLY_TYPE_ERROR_OFFSET where. */
export interface ChunkError {
  readonly errno: number
  readonly message: string
  readonly offset?: number
}

/**
 * An error chunk's payload: u32 error, u16 message length, message, and
 * for NBD_REPLY_TYPE_ERROR_OFFSET a u64 offset after it. Unknown error
 * types are read as NBD_REPLY_TYPE_ERROR (their extra fields ignored).
 */
export const decodeErrorChunk = (type: number, payload: Uint8Array): Either.Either<ChunkError, string> => {
  if (payload.length < 6) return Either.left(`an error chunk of ${payload.length} bytes`)
  const errno = readU32(payload, 0)
  const messageLength = readU16(payload, 4)
  const trailer = type === NBD_REPLY_TYPE_ERROR_OFFSET ? 8 : 0
  if (messageLength > MAX_STRING_LENGTH || 6 + messageLength + trailer > payload.length) {
    return Either.left(`an error chunk whose message (${messageLength} bytes) does not fit its ${payload.length} bytes`)
  }
  const message = decodeMessage(payload.subarray(6, 6 + messageLength))
  if (trailer === 0) return Either.right({ errno, message })
  if (6 + messageLength + trailer !== payload.length) return Either.left(`an error-offset chunk of ${payload.length} bytes with a message of ${messageLength}`)
  const offset = readU64(payload, 6 + messageLength)
  if (offset === undefined) return Either.left("an error at an offset past 2^53")
  return Either.right({ errno, message, offset })
}

/** One block status descriptor: u32 length (nonzero), u32 flags. */
export const BLOCK_DESCRIPTOR_LENGTH = 8
