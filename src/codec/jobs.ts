/**
 * What a codec worker does for each request (src/codec/protocol.ts), as
 * plain functions of the request and the worker's counters, so that they
 * can be tested on the main thread too. Data in shared memory (a slot) is
 * worked on in place and never sent back.
 */
import { createHash, hash } from "node:crypto"
import { closeSync, constants, fstatSync, openSync, readFileSync, readSync, writeSync } from "node:fs"
import type { Algorithm } from "../domain/compression.js"
import { compressBytes, decompressInto, keepsRaw, type WorkCounters } from "./algorithms.js"
import { nativeMd5 } from "./native.js"
import type { ObjectOutcome, PieceReply, Reply, Request, RestoreObject } from "./protocol.js"

/** A reply and the buffers to transfer with it. */
export interface Answer {
  readonly reply: Reply
  readonly transfer: ReadonlyArray<ArrayBuffer>
}

const md5 = (data: Uint8Array) => createHash("md5").update(data).digest("hex")

// All-zero data is common (thin volumes, unused space) and what is computed
// from it depends only on its length: the sha256 of a zero block, the md5
// and the compressed form of a zero object are computed once and reused.
// Telling zeros apart is a memcmp that stops at the first non-zero byte.
const ZEROS = new Uint8Array(1 << 20)
const isZero = (data: Uint8Array) => {
  for (let off = 0; off < data.length; off += ZEROS.length) {
    const part = data.subarray(off, Math.min(off + ZEROS.length, data.length))
    if (Buffer.compare(part, ZEROS.subarray(0, part.length)) !== 0) return false
  }
  return true
}
const ofZeros = new Map<string, unknown>()
const onceForZeros = <A>(key: string, compute: () => A): A => {
  if (!ofZeros.has(key)) ofZeros.set(key, compute())
  return ofZeros.get(key) as A
}
const md5Of = (data: Uint8Array) => (isZero(data) ? onceForZeros(`md5 ${data.length}`, () => md5(data)) : md5(data))
const sha256Of = (block: Uint8Array): Buffer => {
  const sha = () => hash("sha256", block, "buffer")
  return isZero(block) ? onceForZeros(`sha256 ${block.length}`, sha) : sha()
}

const isShared = (view: Uint8Array) => view.buffer instanceof SharedArrayBuffer
/** A copy in an ArrayBuffer of its own (Buffer's slice() would be a view). */
const copyOf = (bytes: Uint8Array) => new Uint8Array(bytes)
/** The result as something that can be transferred back: itself when it owns its whole buffer. */
const transferable = (bytes: Uint8Array) => (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : copyOf(bytes))

/** Runs `work` on `bytes` volume bytes and leaves them counted, however much of it native code counted meanwhile. */
const counting = async <A>(counters: WorkCounters, bytes: number, work: () => Promise<A>): Promise<A> => {
  const before = Atomics.load(counters.done, 0)
  const result = await work()
  Atomics.store(counters.done, 0, before + BigInt(bytes))
  return result
}

/** The SHA-256 of every `blockSize` block of `data` (the last may be short), 32 bytes each, in one buffer. */
const shaBlocks = (data: Uint8Array, blockSize: number): Uint8Array => {
  const count = Math.ceil(data.length / blockSize)
  const digests = new Uint8Array(count * 32)
  for (let i = 0; i < count; i++) digests.set(sha256Of(data.subarray(i * blockSize, Math.min((i + 1) * blockSize, data.length))), i * 32)
  return digests
}

/** md5, and the compressed bytes or null when they would not be smaller (Cinder stores those raw). */
const compressOne = async (algorithm: Algorithm, data: Uint8Array, counters: WorkCounters) => {
  const digest = md5(data)
  if (algorithm === "none" || data.length === 0) return { digest, compressed: null }
  const compressed = await compressBytes(algorithm, data, counters)
  return { digest, compressed: keepsRaw(compressed, data) ? null : compressed }
}

/** md5 and compression of one piece: its reply, and the buffers to transfer. */
const compressPiece = async (algorithm: Algorithm, data: Uint8Array, counters: WorkCounters) => {
  let digest: string
  let bytes: Uint8Array | null
  if (isZero(data)) {
    const once = await onceForZeros(`${algorithm} ${data.length}`, () => compressOne(algorithm, data, counters))
    // A copy: the remembered bytes must stay here.
    digest = once.digest
    bytes = once.compressed === null ? null : copyOf(once.compressed)
  } else {
    const fresh = await compressOne(algorithm, data, counters)
    digest = fresh.digest
    bytes = fresh.compressed === null ? null : transferable(fresh.compressed)
  }
  const piece: PieceReply =
    bytes !== null ? { md5: digest, raw: false, bytes } : isShared(data) ? { md5: digest, raw: true } : { md5: digest, raw: true, bytes: data }
  const transfer = piece.bytes === undefined || isShared(piece.bytes) ? [] : [piece.bytes.buffer as ArrayBuffer]
  return { piece, transfer }
}

/** pwrite until all of `bytes` is written at `position`. */
const writeAll = (fd: number, bytes: Uint8Array, position: number) => {
  for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done, position + done)
}

// Writes go out in 256 KiB parts. A buffered write holds the file's inode
// lock for its whole copy, and the other workers writing the same target
// spin on it meanwhile (50 MiB writes cost a restore ~0.1 s of spinning per
// GiB). And the kernel sizes page-cache folios after the write: an aligned
// 1 MiB write gets a 1 MiB folio, whose allocation in a VM lands on memory
// the hypervisor has taken back (free page reporting) and is slow to touch:
// 0.7-1.0 s of system time per GiB restored here, against 0.3 s in 256 KiB.
const WRITE_PART = 256 << 10

/** Writes `bytes` at `position` in parts; on a sparse target all-zero parts are skipped, being holes already. */
const writeRange = (fd: number, bytes: Uint8Array, position: number, sparse: boolean) => {
  for (let start = 0; start < bytes.length; start += WRITE_PART) {
    const part = bytes.subarray(start, Math.min(start + WRITE_PART, bytes.length))
    if (!(sparse && isZero(part))) writeAll(fd, part, position + start)
  }
}

/** A failure of one stage of restoring an object, for the caller to type. */
const failedAt = (stage: "read" | "decompress" | "write", error: unknown): ObjectOutcome => ({
  _tag: "Failed",
  stage,
  code: typeof (error as { code?: unknown } | null)?.code === "string" ? (error as { code: string }).code : undefined,
  reason: error instanceof Error ? error.message : String(error)
})

// Objects up to this size are read into one buffer kept for the next: a
// chain restore reads hundreds of small objects, and a fresh buffer for each
// cost page faults and zeroing (readFileSync allocates per call).
const SCRATCH_LIMIT = 16 << 20
let scratch = new Uint8Array(0)

// Never follows a link planted as an object (ELOOP) and reads only regular
// files; O_NONBLOCK keeps a FIFO from hanging the open. The caller then reads
// the object through the store, whose error is typed.
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK

/** The whole file at `path`: in the scratch buffer (valid until the next read) when small enough. */
const readObject = (path: string): Uint8Array => {
  const fd = openSync(path, READ_FLAGS)
  try {
    const stat = fstatSync(fd)
    if (!stat.isFile()) throw Object.assign(new Error(`${path} is not a regular file`), { code: "EINVAL" })
    const size = stat.size
    if (size > SCRATCH_LIMIT) return readFileSync(fd)
    if (scratch.length < size) scratch = new Uint8Array(Math.max(size, 2 * scratch.length))
    let done = 0
    for (let n; done < size && (n = readSync(fd, scratch, done, size - done, done)) > 0; ) done += n
    return scratch.subarray(0, done)
  } finally {
    closeSync(fd)
  }
}

/** Reads the object (or takes the bytes sent) and decompresses it into `target`: the length, or a failure. */
const decodeOne = async (object: RestoreObject, target: Uint8Array, counters: WorkCounters): Promise<number | ObjectOutcome> => {
  let source = object.data
  if (object.path !== undefined) {
    try {
      source = readObject(object.path)
    } catch (error) {
      return failedAt("read", error)
    }
  }
  try {
    return await decompressInto(object.algorithm, source ?? new Uint8Array(0), target, counters)
  } catch (error) {
    return failedAt("decompress", error)
  }
}

/** The md5 of each view, in hex: side by side when there are enough of them to fill the lanes. */
const md5sOf = (views: ReadonlyArray<Uint8Array>): Array<string> => {
  const { lanes, md5Many } = nativeMd5()
  if (lanes === 1 || views.length < 3) return views.map(md5Of)
  const digests = md5Many(views)
  return views.map((_, i) => digests.toString("hex", 16 * i, 16 * i + 16))
}

/**
 * The first sha block of `ranges` whose SHA-256 is not the expected one, or
 * undefined when all match (every range starts on a block boundary).
 */
const shaMismatch = (plain: Uint8Array, object: RestoreObject): ObjectOutcome | undefined => {
  if (object.sha256 === undefined) return undefined
  const { blockSize, expected } = object.sha256
  let k = 0
  for (const [start, end, position] of object.ranges) {
    for (let off = start; off < end; off += blockSize, k++) {
      const actual = sha256Of(plain.subarray(off, Math.min(off + blockSize, end)))
      const want = expected.subarray(k * 32, k * 32 + 32)
      if (Buffer.compare(actual, want) !== 0) {
        const hex = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex")
        return { _tag: "ShaMismatch", block: (position + off - start) / blockSize, expected: hex(want), actual: hex(actual) }
      }
    }
  }
  return undefined
}

/**
 * Objects of a restore, each at its own offset `at` of the slot: all are
 * read and decompressed into their places and their md5s taken together;
 * then each in turn is checked (length, md5, sha256s) and only when it
 * passes are its visible ranges written to `fd` (when there is one). Stops at the first object
 * that does not pass: nothing of it, nor of any after it, is written.
 */
export const restoreObjects = async (request: Extract<Request, { op: "restore" }>, counters: WorkCounters): Promise<ReadonlyArray<ObjectOutcome>> => {
  const { objects, into, fd, sparse } = request
  const decoded: Array<Uint8Array> = []
  let failure: ObjectOutcome | undefined
  for (const object of objects) {
    const target = into.subarray(object.at, Math.min(into.length, object.at + object.expectedLength))
    const result = await decodeOne(object, target, counters)
    if (typeof result !== "number") {
      failure = result
      break
    }
    decoded.push(target.subarray(0, result))
  }
  const md5s = md5sOf(decoded)
  const outcomes: Array<ObjectOutcome> = []
  let visible = 0
  for (const [i, plain] of decoded.entries()) {
    const object = objects[i]!
    const checked: ObjectOutcome = { _tag: "Checked", md5: md5s[i]!, length: plain.length }
    if (plain.length !== object.expectedLength || checked.md5 !== object.expectedMd5) {
      outcomes.push(checked)
      return outcomes
    }
    const mismatch = shaMismatch(plain, object)
    if (mismatch !== undefined) {
      outcomes.push(mismatch)
      return outcomes
    }
    try {
      if (fd !== undefined) for (const [start, end, position] of object.ranges) writeRange(fd, plain.subarray(start, end), position, sparse)
    } catch (error) {
      outcomes.push(failedAt("write", error))
      return outcomes
    }
    visible += object.ranges.reduce((sum, [start, end]) => sum + end - start, 0)
    // The object's decompression counted all its bytes; what counts is what reached the target.
    Atomics.store(counters.done, 0, BigInt(visible))
    outcomes.push(checked)
  }
  if (failure !== undefined) outcomes.push(failure)
  return outcomes
}

/** The answer to one request. Throws only on a failure of the whole job (a codec error). */
export const answer = async (request: Request, counters: WorkCounters): Promise<Answer> => {
  const { id } = request
  switch (request.op) {
    case "hash": {
      const digests = shaBlocks(request.data, request.blockSize)
      return { reply: { op: "hash", id, digests }, transfer: [digests.buffer as ArrayBuffer] }
    }
    case "compress": {
      const { piece, transfer } = await counting(counters, request.data.length, () => compressPiece(request.algorithm, request.data, counters))
      return { reply: { op: "compress", id, piece }, transfer }
    }
    case "compressMany": {
      // Several small pieces (views of one slot) in one message: one round trip for all of them.
      const pieces: Array<PieceReply> = []
      const transfer: Array<ArrayBuffer> = []
      for (const data of request.pieces) {
        const one = await counting(counters, data.length, () => compressPiece(request.algorithm, data, counters))
        pieces.push(one.piece)
        transfer.push(...one.transfer)
      }
      return { reply: { op: "compressMany", id, pieces }, transfer }
    }
    case "decompress": {
      // Into the caller's slot when given one, else into a buffer sent back.
      const { into, expectedLength } = request
      const target = into === undefined ? new Uint8Array(expectedLength) : into.subarray(0, Math.min(into.length, expectedLength))
      const length = await counting(counters, target.length, () => decompressInto(request.algorithm, request.data, target, counters))
      const digest = md5Of(target.subarray(0, length))
      if (into !== undefined) return { reply: { op: "decompress", id, md5: digest, length }, transfer: [] }
      const bytes = length === target.length ? target : copyOf(target.subarray(0, length))
      return { reply: { op: "decompress", id, md5: digest, length, bytes }, transfer: [bytes.buffer as ArrayBuffer] }
    }
    case "restore":
      return { reply: { op: "restore", id, outcomes: await restoreObjects(request, counters) }, transfer: [] }
  }
}
