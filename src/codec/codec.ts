/**
 * Compressing and decompressing objects as typed Effects: on this thread
 * (compressObject, decompressObject) or in the codec pool (prepareObject,
 * openObject). The algorithms and Cinder's settings are in algorithms.ts.
 */
import { Effect } from "effect"
import { algorithmOf, type Algorithm, type Compression } from "../domain/compression.js"
import { CompressionError } from "../domain/errors.js"
import { compressBytes, decompressInto, keepsRaw } from "./algorithms.js"
import type { CodecPool } from "./pool.js"
import { compressInWorker, compressManyInWorker, decompressInWorker } from "./poolJobs.js"

const describe = (e: unknown) => (e instanceof Error ? e.message : String(e))

/**
 * Compresses one object the way Cinder's `_prepare_output_data` does: when the
 * result is not smaller than the input, the raw bytes are kept and recorded
 * as `"none"`.
 */
export const compressObject = (
  compression: Compression,
  data: Uint8Array
): Effect.Effect<{ readonly algorithm: string; readonly bytes: Uint8Array }, CompressionError> => {
  // Nothing compresses to less than nothing: Cinder ends up storing it raw too.
  if (compression.algorithm === "none" || data.length === 0) return Effect.succeed({ algorithm: "none", bytes: data })
  const algorithm = compression.algorithm
  return Effect.tryPromise({
    try: () => compressBytes(algorithm, data),
    catch: (e) => new CompressionError({ algorithm: compression.name, reason: `compression failed: ${describe(e)}` })
  }).pipe(
    Effect.map((bytes) =>
      keepsRaw(bytes, data) ? { algorithm: "none", bytes: data } : { algorithm: compression.name, bytes }
    )
  )
}

/** The algorithm of a recorded compression name (`null` and every alias accepted), or the error naming the object. */
export const recordedAlgorithm = (
  name: string | null,
  object: string
): Effect.Effect<{ readonly label: string; readonly algorithm: Algorithm }, CompressionError> => {
  const label = name ?? "none"
  const algorithm = algorithmOf(label)
  return algorithm === undefined
    ? Effect.fail(new CompressionError({ algorithm: label, reason: "is not a known compression", object }))
    : Effect.succeed({ label, algorithm })
}

/** A decompression that failed, named after the object's recorded compression. */
export const decompressionFailed = (label: string, reason: string, object: string) =>
  new CompressionError({ algorithm: label, reason: `decompression failed: ${reason}`, object })

/**
 * Decompresses one object by the name recorded for it (`null` and every
 * alias accepted). `expectedLength` bounds the output of every algorithm, so
 * a corrupt or hostile object cannot balloon memory.
 */
export const decompressObject = (
  name: string | null,
  data: Uint8Array,
  expectedLength: number,
  object: string
): Effect.Effect<Uint8Array, CompressionError> =>
  Effect.flatMap(recordedAlgorithm(name, object), ({ label, algorithm }) =>
    algorithm === "none"
      ? Effect.succeed(data)
      : Effect.tryPromise({
          try: async () => {
            const target = new Uint8Array(expectedLength)
            return target.subarray(0, await decompressInto(algorithm, data, target))
          },
          catch: (e) => decompressionFailed(label, describe(e), object)
        })
  )

/**
 * What a backup does with each piece: md5 and compression (raw when it does
 * not shrink), in a worker thread. A whole non-shared `data` buffer is handed
 * over to the worker; a slot (or part of one) is read in place, and is
 * `bytes` when stored raw.
 */
export const prepareObject = (
  compression: Compression,
  data: Uint8Array
): Effect.Effect<{ readonly algorithm: string; readonly bytes: Uint8Array; readonly md5: string }, CompressionError, CodecPool> =>
  compressInWorker(compression.algorithm, data).pipe(
    Effect.map(({ bytes, md5, raw }) => ({ algorithm: raw ? "none" : compression.name, bytes, md5 })),
    Effect.mapError((reason) => new CompressionError({ algorithm: compression.name, reason: `compression failed: ${reason}` }))
  )

/** `prepareObject` for several pieces of one slot, in one worker job. */
export const prepareObjects = (
  compression: Compression,
  pieces: ReadonlyArray<Uint8Array>
): Effect.Effect<Array<{ readonly algorithm: string; readonly bytes: Uint8Array; readonly md5: string }>, CompressionError, CodecPool> =>
  compressManyInWorker(compression.algorithm, pieces).pipe(
    Effect.map((results) => results.map(({ bytes, md5, raw }) => ({ algorithm: raw ? "none" : compression.name, bytes, md5 }))),
    Effect.mapError((reason) => new CompressionError({ algorithm: compression.name, reason: `compression failed: ${reason}` }))
  )

/**
 * What a restore does with each object: decompression by its recorded name
 * and md5 of the result, in a worker thread. `data` is handed over. With
 * `into` (a slot of at least `expectedLength` bytes) the result is written
 * there and `bytes` is a view of it.
 */
export const openObject = (
  name: string | null,
  data: Uint8Array,
  expectedLength: number,
  object: string,
  into?: Uint8Array
): Effect.Effect<{ readonly bytes: Uint8Array; readonly md5: string }, CompressionError, CodecPool> =>
  Effect.flatMap(recordedAlgorithm(name, object), ({ label, algorithm }) =>
    decompressInWorker(algorithm, data, expectedLength, into).pipe(Effect.mapError((reason) => decompressionFailed(label, reason, object)))
  )
