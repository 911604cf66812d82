/**
 * The codec pool's jobs as typed Effects: what backup, restore and verify
 * ask of the workers. Each needs the CodecPool service.
 */
import { Effect } from "effect"
import type { Algorithm } from "../domain/compression.js"
import { CodecPool } from "./pool.js"
import type { ObjectOutcome, PieceReply, Reply, RestoreObject } from "./protocol.js"
import { isShared, sendable, transferOf } from "./slots.js"

export interface CodecResult {
  /** compressed (or decompressed) bytes; the input itself when stored raw or decompressed `into` a slot */
  readonly bytes: Uint8Array
  /** md5 of the uncompressed bytes */
  readonly md5: string
  /** compress: stored raw because compression did not shrink it */
  readonly raw: boolean
}

/** The reply of a job, or its error message when the job failed as a whole. */
const succeeded = <R extends Reply>(reply: R): Effect.Effect<Exclude<R, { readonly op: "failed" }>, string> => {
  const any: Reply = reply
  return any.op === "failed" ? Effect.fail(any.error) : Effect.succeed(reply as Exclude<R, { readonly op: "failed" }>)
}

const resultOf = (piece: PieceReply, input: Uint8Array): CodecResult =>
  piece.raw ? { bytes: piece.bytes ?? input, md5: piece.md5, raw: true } : { bytes: piece.bytes, md5: piece.md5, raw: false }

/**
 * md5 and compression of one object in a worker. A whole non-shared buffer
 * is handed over: the caller must not use it afterwards (when stored raw it
 * comes back as `bytes`). Shared data stays where it is.
 */
export const compressInWorker = (algorithm: Algorithm, data: Uint8Array): Effect.Effect<CodecResult, string, CodecPool> =>
  Effect.flatMap(CodecPool, (pool) => pool.run({ op: "compress", algorithm, data }, [], data.length)).pipe(
    Effect.flatMap(succeeded),
    Effect.map((reply) => resultOf(reply.piece, data))
  )

/**
 * md5 and compression of several pieces of one slot (views of shared memory)
 * in one worker job: the pieces of a slot of many small chunks cost one
 * round trip, not one each. A piece stored raw comes back as itself.
 */
export const compressManyInWorker = (algorithm: Algorithm, pieces: ReadonlyArray<Uint8Array>): Effect.Effect<Array<CodecResult>, string, CodecPool> =>
  pieces.some((piece) => !isShared(piece))
    ? Effect.dieMessage("compressManyInWorker: every piece must be in shared memory (a slot)")
    : Effect.flatMap(CodecPool, (pool) => pool.run({ op: "compressMany", algorithm, pieces }, [], pieces.reduce((sum, p) => sum + p.length, 0))).pipe(
        Effect.flatMap(succeeded),
        Effect.map((reply) => reply.pieces.map((piece, i) => resultOf(piece, pieces[i]!)))
      )

/** The SHA-256 of every `blockSize` block of `data`, 32 bytes each, in a worker; pass a slot to avoid a copy. */
export const hashInWorker = (data: Uint8Array, blockSize: number): Effect.Effect<Uint8Array, never, CodecPool> =>
  Effect.flatMap(CodecPool, (pool) => pool.run({ op: "hash", data, blockSize })).pipe(
    Effect.flatMap(succeeded),
    Effect.map((reply) => reply.digests),
    Effect.orDieWith((reason) => new Error(`sha256 worker failed: ${reason}`))
  )

/**
 * Decompression and md5 of one object in a worker; `data` is handed over.
 * With `into` (a slot), the plain bytes are written there and `bytes` is a
 * view of it; the result must fit.
 */
export const decompressInWorker = (
  algorithm: Algorithm,
  data: Uint8Array,
  expectedLength: number,
  into?: Uint8Array
): Effect.Effect<CodecResult, string, CodecPool> =>
  into !== undefined && !isShared(into)
    ? Effect.dieMessage("decompressInWorker: `into` must be in shared memory (a slot)")
    : Effect.flatMap(CodecPool, (pool) =>
        pool.run({ op: "decompress", algorithm, data, expectedLength, ...(into === undefined ? {} : { into }) }, [], expectedLength)
      ).pipe(
        Effect.flatMap(succeeded),
        Effect.map((reply) => ({
          bytes: into === undefined ? reply.bytes! : into.subarray(0, reply.length),
          md5: reply.md5,
          raw: false
        }))
      )

export interface RestoreObjectJob {
  readonly algorithm: Algorithm
  /** the object's stored bytes, or (`path`) its file for the worker to read */
  readonly source: { readonly bytes: Uint8Array } | { readonly path: string }
  /** where in the slot it is decompressed */
  readonly at: number
  readonly expectedLength: number
  readonly expectedMd5: string
  /** [start, end) within the object, written at `position` of the target */
  readonly ranges: ReadonlyArray<readonly [start: number, end: number, position: number]>
  /** check each sha block of the ranges (which start on block boundaries) against these digests, 32 bytes each, in order */
  readonly sha256?: { readonly blockSize: number; readonly expected: Uint8Array }
}

export interface RestoreJob {
  readonly objects: ReadonlyArray<RestoreObjectJob>
  /** a slot with room for every object at its `at` */
  readonly into: Uint8Array
  /** the target's file descriptor; without one the objects are only checked, and the caller writes them */
  readonly fd?: number
  /** skip all-zero parts: the target is new and its holes read as zeros */
  readonly sparse: boolean
}

export type RestoreOutcome = ObjectOutcome

/**
 * Objects of a restore in a worker, in one message: each is read,
 * decompressed into its place in the slot and checked (md5 and length), and
 * only then its visible ranges are written to the target. The outcomes stop
 * at the first object that does not check out. Interrupted, it terminates
 * the worker and returns once the worker is gone, so no write lands after.
 */
export const restoreInWorker = (job: RestoreJob): Effect.Effect<ReadonlyArray<RestoreOutcome>, never, CodecPool> => {
  if (!isShared(job.into)) return Effect.dieMessage("restoreInWorker: `into` must be in shared memory (a slot)")
  const objects: Array<RestoreObject> = job.objects.map(({ source, ...rest }) =>
    "path" in source ? { ...rest, path: source.path } : { ...rest, data: sendable(source.bytes) }
  )
  const transfer = objects.flatMap((o) => (o.data !== undefined ? transferOf(o.data) : []))
  const visible = job.objects.reduce((sum, o) => o.ranges.reduce((inner, [start, end]) => inner + end - start, sum), 0)
  return Effect.flatMap(CodecPool, (pool) =>
    pool.run({ op: "restore", objects, into: job.into, ...(job.fd === undefined ? {} : { fd: job.fd }), sparse: job.sparse }, transfer, visible)
  ).pipe(
    Effect.flatMap((reply) =>
      reply.op === "failed" ? Effect.dieMessage(`restore worker failed: ${reply.error}`) : Effect.succeed(reply.outcomes)
    )
  )
}
