/**
 * The messages between the codec pool (main thread) and its workers: one
 * request per job, one reply per request, both discriminated by `op`. Both
 * sides are compiled against these types; nothing else crosses the thread.
 */
import type { Algorithm } from "../domain/compression.js"

/** What the pool hands each worker when it starts it. */
export interface WorkerData {
  /** set non-zero by the pool to stop the job running (bzip2 gives up at its next step) */
  readonly stop: Int32Array
  /** volume bytes the running job has worked through; zeroed by the pool before each job */
  readonly done: BigInt64Array
}

/** One object of a restore job. */
export interface RestoreObject {
  readonly algorithm: Algorithm
  /** the stored bytes, sent along ... */
  readonly data?: Uint8Array
  /** ... or the file the worker reads them from (a posix store) */
  readonly path?: string
  /** where in the slot it is decompressed */
  readonly at: number
  readonly expectedLength: number
  readonly expectedMd5: string
  /** [start, end) within the object, written at `position` of the target */
  readonly ranges: ReadonlyArray<readonly [start: number, end: number, position: number]>
  /** the sha256 of each sha block of the ranges (which start on block boundaries), 32 bytes each, in order */
  readonly sha256?: { readonly blockSize: number; readonly expected: Uint8Array }
}

export type Request =
  /** SHA-256 of every `blockSize` block of `data` */
  | { readonly op: "hash"; readonly id: number; readonly data: Uint8Array; readonly blockSize: number }
  /** md5 and compression of one object */
  | { readonly op: "compress"; readonly id: number; readonly algorithm: Algorithm; readonly data: Uint8Array }
  /** md5 and compression of several pieces (views of one slot) */
  | { readonly op: "compressMany"; readonly id: number; readonly algorithm: Algorithm; readonly pieces: ReadonlyArray<Uint8Array> }
  /** decompression and md5 of one object, into `into` (a slot) or a new buffer */
  | {
      readonly op: "decompress"
      readonly id: number
      readonly algorithm: Algorithm
      readonly data: Uint8Array
      readonly expectedLength: number
      readonly into?: Uint8Array
    }
  /** read, decompress, check and write objects of a restore */
  | {
      readonly op: "restore"
      readonly id: number
      readonly objects: ReadonlyArray<RestoreObject>
      readonly into: Uint8Array
      /** the target's descriptor; without one nothing is written (the caller writes the checked ranges) */
      readonly fd?: number
      readonly sparse: boolean
    }

/** A compressed piece: its md5, and its bytes unless compression did not shrink it (`raw`: the input is stored). */
export type PieceReply =
  | { readonly md5: string; readonly raw: true; readonly bytes?: Uint8Array }
  | { readonly md5: string; readonly raw: false; readonly bytes: Uint8Array }

/** How one object of a restore job ended. */
export type ObjectOutcome =
  /** decompressed, with this md5 and length; its ranges were written only when both are the expected ones */
  | { readonly _tag: "Checked"; readonly md5: string; readonly length: number }
  | { readonly _tag: "Failed"; readonly stage: "read" | "decompress" | "write"; readonly code: string | undefined; readonly reason: string }
  /** its md5 matched, but sha block `block` of the volume did not: nothing of it was written */
  | { readonly _tag: "ShaMismatch"; readonly block: number; readonly expected: string; readonly actual: string }

export type Reply =
  | { readonly op: "hash"; readonly id: number; readonly digests: Uint8Array }
  | { readonly op: "compress"; readonly id: number; readonly piece: PieceReply }
  | { readonly op: "compressMany"; readonly id: number; readonly pieces: ReadonlyArray<PieceReply> }
  /** `bytes` when it was not decompressed into a slot */
  | { readonly op: "decompress"; readonly id: number; readonly md5: string; readonly length: number; readonly bytes?: Uint8Array }
  /** each object's outcome, up to and including the first that did not check out */
  | { readonly op: "restore"; readonly id: number; readonly outcomes: ReadonlyArray<ObjectOutcome> }
  /** the job failed as a whole (a codec error, a bug) */
  | { readonly op: "failed"; readonly id: number; readonly error: string }

/** The reply type of a request's op. */
export type ReplyTo<Op extends Request["op"]> = Extract<Reply, { readonly op: Op | "failed" }>
