// A codec worker thread (src/codec/pool.ts sends the jobs), one message per
// job: "hash" (SHA-256 of every sha block of a chunk), "compress" (md5 and
// compression of an object; "compressMany" of several), "decompress" (into a slot or a new buffer, with
// md5) and "restore" (read, decompress, check and write objects of a
// restore). Same codec settings as src/codec/codec.ts. Plain JavaScript so
// that it runs the same from the TypeScript sources (tests) and from dist/.
import { createHash, hash } from "node:crypto"
import { closeSync, constants, fstatSync, openSync, readFileSync, readSync, writeSync } from "node:fs"
import { createRequire } from "node:module"
import { parentPort, workerData } from "node:worker_threads"
import * as zlib from "node:zlib"

const require = createRequire(import.meta.url)
const zstdBinding = require("zstd-napi/binding")
const bz2 = require("../native/build/Release/bz2.node")
// inflateInto always; deflate when built with libdeflate (native/zlib.c says why).
const nativeZlib = require("../native/build/Release/zlib.node")
// md5 of several buffers side by side (SIMD lanes; native/md5.c says why).
const { md5Many, lanes: md5Lanes } = require("../native/build/Release/md5.node")

// zstd into one reused buffer per worker, then an exact copy: zstd-napi's
// compress() allocates a fresh compressBound-sized (~chunk) buffer per call,
// which lingered until this thread's next GC and made peak RSS wander.
const cctx = new zstdBinding.CCtx()
let zstdScratch = new Uint8Array(0)
const zstdInto = (data) => {
  const bound = zstdBinding.compressBound(data.length)
  if (zstdScratch.length < bound) zstdScratch = new Uint8Array(bound)
  return new Uint8Array(zstdScratch.subarray(0, cctx.compress(zstdScratch, data, 3)))
}

// Set by the pool when it cancels this worker's job: long native work (bzip2) stops at its next step.
const stop = workerData?.stop instanceof Int32Array ? workerData.stop : new Int32Array(new SharedArrayBuffer(4))
// The volume bytes the current job has worked through, for progress within an object: the pool zeroes it
// before each job, bzip2 adds its steps as it goes, and the others are credited here as each piece ends.
const done = workerData?.done instanceof BigInt64Array ? workerData.done : new BigInt64Array(new SharedArrayBuffer(8))
/** Runs `work` on `bytes` volume bytes and leaves them counted, however much of it native code counted meanwhile. */
const counting = async (bytes, work) => {
  const before = Atomics.load(done, 0)
  const result = await work()
  Atomics.store(done, 0, before + BigInt(bytes))
  return result
}

const compressors = {
  zlib: nativeZlib.deflate === undefined ? async (data) => zlib.deflateSync(data, { level: 6 }) : async (data) => nativeZlib.deflate(data, 6),
  bz2: (data) => bz2.compress(data, 9, stop, done),
  zstd: async (data) => zstdInto(data)
}

// Each writes the plain bytes into `target` (sized to the expected length,
// so a longer result fails) and returns how many it wrote.
const decompressors = {
  none: (data, target) => {
    if (data.length > target.length) throw new Error(`${data.length} bytes, more than the expected ${target.length}`)
    target.set(data)
    return data.length
  },
  zlib: (data, target) => nativeZlib.inflateInto(data, target),
  bz2: async (data, target) => {
    const plain = await bz2.decompress(data, target.length, stop, done)
    target.set(plain)
    return plain.length
  },
  zstd: (data, target) => {
    // The frame header states its size; refuse before decompressing.
    const declared = zstdBinding.getFrameContentSize(data)
    if (declared !== null && declared > target.length) {
      throw new Error(`frame declares ${declared} bytes, more than the expected ${target.length}`)
    }
    return zstdBinding.decompress(target, data)
  }
}

const md5 = (data) => createHash("md5").update(data).digest("hex")

// All-zero data is common (thin volumes, unused space) and what is computed
// from it depends only on its length: the sha256 of a zero block, the md5
// and the compressed form of a zero object are computed once and reused.
// Telling zeros apart is a memcmp that stops at the first non-zero byte.
const ZEROS = new Uint8Array(1 << 20)
const isZero = (data) => {
  for (let off = 0; off < data.length; off += ZEROS.length) {
    const part = data.subarray(off, Math.min(off + ZEROS.length, data.length))
    if (Buffer.compare(part, ZEROS.subarray(0, part.length)) !== 0) return false
  }
  return true
}
const ofZeros = new Map()
const onceForZeros = (key, compute) => {
  let value = ofZeros.get(key)
  if (value === undefined) ofZeros.set(key, (value = compute()))
  return value
}
const md5Of = (data) => (isZero(data) ? onceForZeros(`md5 ${data.length}`, () => md5(data)) : md5(data))

/** A copy in an ArrayBuffer of its own (Buffer's slice() would be a view). */
const copyOf = (bytes) => new Uint8Array(bytes)

/** The result as something that can be transferred back: itself when it owns its whole buffer. */
const transferable = (bytes) => (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : copyOf(bytes))

/** The SHA-256 of every `blockSize` block of `data` (the last may be short), 32 bytes each, in one buffer. */
const shaBlocks = (data, blockSize) => {
  const count = Math.ceil(data.length / blockSize)
  const digests = new Uint8Array(count * 32)
  for (let i = 0; i < count; i++) {
    const block = data.subarray(i * blockSize, Math.min((i + 1) * blockSize, data.length))
    const sha = () => hash("sha256", block, "buffer")
    digests.set(isZero(block) ? onceForZeros(`sha256 ${block.length}`, sha) : sha(), i * 32)
  }
  return digests
}

/** md5, and the compressed bytes or null when they would not be smaller (Cinder stores those raw). */
const compressOne = async (algorithm, data) => {
  const digest = md5(data)
  const compressed = algorithm === "none" || data.length === 0 ? data : await compressors[algorithm](data)
  return { digest, compressed: compressed.length >= data.length ? null : compressed }
}

const isShared = (view) => view.buffer instanceof SharedArrayBuffer

/** pwrite until all of `bytes` is written at `position`. */
const writeAll = (fd, bytes, position) => {
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
const writeRange = (fd, bytes, position, sparse) => {
  for (let start = 0; start < bytes.length; start += WRITE_PART) {
    const part = bytes.subarray(start, Math.min(start + WRITE_PART, bytes.length))
    if (!(sparse && isZero(part))) writeAll(fd, part, position + start)
  }
}

/** A failure of one stage of restoring an object, for the caller to type. */
const failedAt = (stage, error) => ({ stage, code: error?.code, error: error instanceof Error ? error.message : String(error) })

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
const readObject = (path) => {
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

/** Reads `path` (or takes the bytes sent) and decompresses it into `target`; the length, or a failure. */
const decodeOne = async ({ algorithm, data, path }, target) => {
  let source = data
  if (path !== undefined) {
    try {
      source = readObject(path)
    } catch (error) {
      return failedAt("read", error)
    }
  }
  try {
    return { length: await decompressors[algorithm](source, target) }
  } catch (error) {
    return failedAt("decompress", error)
  }
}

/** The md5 of each view, in hex: side by side when there are enough of them to fill the lanes. */
const md5sOf = (views) => {
  if (md5Lanes === 1 || views.length < 3) return views.map(md5Of)
  const digests = md5Many(views)
  return views.map((_, i) => digests.toString("hex", 16 * i, 16 * i + 16))
}

/**
 * The first sha block of `ranges` whose SHA-256 is not the expected one
 * (`sha256.expected`, 32 bytes per block, in the ranges' order; every range
 * starts on a block boundary), or undefined when all match.
 */
const shaMismatch = (plain, ranges, sha256) => {
  const { blockSize, expected } = sha256
  let k = 0
  for (const [start, end, position] of ranges) {
    for (let off = start; off < end; off += blockSize, k++) {
      const block = plain.subarray(off, Math.min(off + blockSize, end))
      const sha = () => hash("sha256", block, "buffer")
      const actual = isZero(block) ? onceForZeros(`sha256 ${block.length}`, sha) : sha()
      const want = expected.subarray(k * 32, k * 32 + 32)
      if (Buffer.compare(actual, want) !== 0) {
        const hex = (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex")
        return { block: (position + off - start) / blockSize, expected: hex(want), actual: hex(actual) }
      }
    }
  }
  return undefined
}

/**
 * Objects of a restore in one message, each at its own offset `at` of the
 * slot: all are read and decompressed into their places, their md5s taken
 * together, then each is checked and only then its visible `ranges`
 * ([start, end, position] within the object / the target) written to `fd`.
 * Stops at the first object that fails; nothing of it is written.
 */
const restoreObjects = async ({ id, objects, into, fd, sparse }) => {
  const decoded = []
  let failure
  for (const object of objects) {
    const target = into.subarray(object.at, Math.min(into.length, object.at + object.expectedLength))
    const result = await decodeOne(object, target)
    if (result.length === undefined) {
      failure = result
      break
    }
    decoded.push(target.subarray(0, result.length))
  }
  const md5s = md5sOf(decoded)
  const outcomes = []
  let visible = 0
  for (const [i, plain] of decoded.entries()) {
    const { expectedLength, expectedMd5, ranges, sha256 } = objects[i]
    const checked = { md5: md5s[i], length: plain.length }
    if (plain.length !== expectedLength || checked.md5 !== expectedMd5) {
      outcomes.push({ ...checked, ok: false })
      break
    }
    const mismatch = sha256 === undefined ? undefined : shaMismatch(plain, ranges, sha256)
    if (mismatch !== undefined) {
      outcomes.push({ shaMismatch: mismatch })
      break
    }
    try {
      for (const [start, end, position] of ranges) writeRange(fd, plain.subarray(start, end), position, sparse)
      visible += ranges.reduce((sum, [start, end]) => sum + end - start, 0)
      // The object's decompression counted all its bytes; what counts is what reached the target.
      Atomics.store(done, 0, BigInt(visible))
      outcomes.push({ ...checked, ok: true })
    } catch (error) {
      outcomes.push(failedAt("write", error))
      break
    }
  }
  if (failure !== undefined && outcomes.length === decoded.length) outcomes.push(failure)
  parentPort.postMessage({ id, outcomes })
}

/**
 * md5 and compression of one piece: the reply (md5; the compressed bytes, or
 * raw when compressing did not shrink it) and the buffers to transfer.
 */
const compressPiece = async (algorithm, data) => {
  let digest, bytes
  if (isZero(data)) {
    const once = await onceForZeros(`${algorithm} ${data.length}`, () => compressOne(algorithm, data))
    // A copy: the remembered bytes must stay here.
    ;({ digest } = once)
    bytes = once.compressed === null ? null : copyOf(once.compressed)
  } else {
    const fresh = await compressOne(algorithm, data)
    digest = fresh.digest
    bytes = fresh.compressed === null ? null : transferable(fresh.compressed)
  }
  if (bytes === null) {
    return isShared(data)
      ? { reply: { md5: digest, raw: true }, transfer: [] }
      : { reply: { md5: digest, raw: true, bytes: data }, transfer: [data.buffer] }
  }
  return { reply: { md5: digest, raw: false, bytes }, transfer: [bytes.buffer] }
}

// Shared data (a chunk slot) is worked on in place and never sent back.
parentPort.on("message", async (message) => {
  const { id, op, algorithm, data, expectedLength, blockSize, into } = message
  try {
    if (op === "restore") {
      await restoreObjects(message)
    } else if (op === "hash") {
      const digests = shaBlocks(data, blockSize)
      parentPort.postMessage({ id, digests }, [digests.buffer])
    } else if (op === "compress") {
      const { reply, transfer } = await counting(data.length, () => compressPiece(algorithm, data))
      parentPort.postMessage({ id, ...reply }, transfer)
    } else if (op === "compressMany") {
      // Several small pieces (views of one slot) in one message: one round trip for all of them.
      const replies = []
      const transfer = []
      for (const piece of message.pieces) {
        const one = await counting(piece.length, () => compressPiece(algorithm, piece))
        replies.push(one.reply)
        transfer.push(...one.transfer)
      }
      parentPort.postMessage({ id, pieces: replies }, transfer)
    } else {
      // Into the caller's slot when given one, else into a buffer sent back.
      const target = into === undefined ? new Uint8Array(expectedLength) : into.subarray(0, Math.min(into.length, expectedLength))
      const length = await counting(target.length, () => decompressors[algorithm](data, target))
      const digest = md5Of(target.subarray(0, length))
      if (into !== undefined) {
        parentPort.postMessage({ id, md5: digest, length })
      } else {
        const bytes = length === target.length ? target : copyOf(target.subarray(0, length))
        parentPort.postMessage({ id, md5: digest, bytes }, [bytes.buffer])
      }
    }
  } catch (error) {
    parentPort.postMessage({ id, error: error instanceof Error ? error.message : String(error) })
  }
})
