/**
 * Where a backup reads its volume from: a VolumeSource has a size known
 * before the backup starts (it goes into the record) and fills a caller's
 * buffer with the bytes from an offset on. A regular file or block device
 * by path reads at any offset; a Stream (a pipe, standard input) reads in
 * order only, and is checked against its declared size.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { read as nodeRead } from "node:fs"
import { Chunk, Effect, Option, type Scope, Stream } from "effect"
import { copyInto, dataExtents } from "../codec/native.js"
import { VolumeError } from "../domain/errors.js"
import type { Range } from "./extents.js"
import { volumeError, volumeInfo } from "./volume.js"

/** A volume to back up: its size, and reads at offsets. Made by `fileSource` or `streamSource`. */
export interface VolumeSource {
  /** How messages name it: its path, or what the stream is ("standard input"). */
  readonly name: string
  /** Its size in bytes. */
  readonly size: number
  /**
   * Fills `buffer` with the bytes from `offset` on; fewer only at the end of
   * the volume (0 there). A stream source is read in order: each offset is
   * where the previous read ended.
   */
  readonly read: (offset: number, buffer: Uint8Array) => Effect.Effect<number, VolumeError>
  /**
   * Where the volume holds data, in order: bytes outside these ranges read
   * as zeros (a thin volume's holes). Absent when the source cannot tell.
   */
  readonly extents?: Effect.Effect<ReadonlyArray<Range>, VolumeError>
  /**
   * For an incremental backup: where the volume may differ from the parent
   * backup's, in order (a dirty bitmap started at the parent). Bytes outside
   * these ranges are taken to be the parent's and are not read. Absent when
   * the source cannot tell; then every byte is read and compared.
   */
  readonly changes?: Effect.Effect<ReadonlyArray<Range>, VolumeError>
  /** True when reads must come in order (a stream); otherwise several may be in flight. */
  readonly sequential?: boolean
}

/** A regular file or block device (its size from the kernel), open for the scope. */
export const fileSource = (path: string): Effect.Effect<VolumeSource, VolumeError, FileSystem.FileSystem | Scope.Scope> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const { size, isBlockDevice } = yield* volumeInfo(path)
    const file = yield* fs.open(path, { flag: "r" }).pipe(Effect.mapError(volumeError(path)))
    const fd = file.fd as number
    // Positional reads (pread), so that several may be in flight.
    const readAt = (buffer: Uint8Array, position: number) =>
      Effect.async<number, VolumeError>((resume) => {
        nodeRead(fd, buffer, 0, buffer.length, position, (error, n) =>
          resume(
            error === null
              ? Effect.succeed(n)
              : Effect.fail(new VolumeError({ path, reason: `read at offset ${position} failed: ${error.message}`, cause: error, ...(error.code === undefined ? {} : { code: error.code }) }))
          )
        )
      })
    const read = (offset: number, buffer: Uint8Array) =>
      Effect.gen(function* () {
        let filled = 0
        while (filled < buffer.length) {
          const n = yield* readAt(buffer.subarray(filled), offset + filled)
          if (n === 0) break
          filled += n
        }
        return filled
      })
    // A regular file's holes, from the file system; a device is all data.
    const extents = isBlockDevice
      ? Effect.succeed([{ start: 0, end: size }])
      : Effect.try({
          try: () => {
            const flat = dataExtents(fd, size)
            const ranges: Array<Range> = []
            for (let i = 0; i + 1 < flat.length; i += 2) ranges.push({ start: flat[i]!, end: flat[i + 1]! })
            return ranges
          },
          catch: (cause) => new VolumeError({ path, reason: `its extents could not be read: ${cause instanceof Error ? cause.message : String(cause)}`, cause })
        })
    return { name: path, size, read, extents }
  })

/**
 * A volume of `size` bytes that arrives as a stream (backup from a pipe),
 * pulled as the backup reads it, within the scope. A stream that ends
 * early, or has bytes past `size`, fails the read with a VolumeError; so
 * does the stream's own failure.
 */
export const streamSource = <E>(
  stream: Stream.Stream<Uint8Array, E>,
  size: number,
  name = "stream"
): Effect.Effect<VolumeSource, never, Scope.Scope> =>
  Effect.gen(function* () {
    const pull = yield* Stream.toPull(stream)
    const fail = (reason: string, cause?: unknown) => new VolumeError({ path: name, reason, ...(cause === undefined ? {} : { cause }) })
    let position = 0
    let pending = new Uint8Array(0)
    // The next bytes of the stream (empty at its end).
    const nextBytes = pull.pipe(
      Effect.map((chunk) => (Chunk.isEmpty(chunk) ? new Uint8Array(0) : Buffer.concat(Chunk.toReadonlyArray(chunk)))),
      Effect.catchAll(Option.match({
        onNone: () => Effect.succeed(undefined),
        onSome: (error) => Effect.fail(fail(`read failed: ${error instanceof Error ? error.message : String(error)}`, error))
      }))
    )
    const read = (offset: number, buffer: Uint8Array) =>
      Effect.gen(function* () {
        if (offset !== position) return yield* Effect.dieMessage(`streamSource: read at ${offset}, but the stream is at ${position}`)
        const wanted = Math.min(buffer.length, size - position)
        let filled = 0
        while (filled < wanted) {
          if (pending.length === 0) {
            const bytes = yield* nextBytes
            if (bytes === undefined) return yield* fail(`ended after ${position + filled} bytes, before the ${size} bytes declared`)
            pending = bytes
            continue
          }
          const n = Math.min(pending.length, wanted - filled)
          // Not buffer.set: into a slot (shared memory) that goes byte by byte unless both are aligned alike.
          copyInto(buffer, filled, pending, 0, n)
          pending = pending.subarray(n)
          filled += n
        }
        position += filled
        if (position === size) {
          // The declared end: nothing may follow it.
          while (pending.length === 0) {
            const bytes = yield* nextBytes
            if (bytes === undefined) break
            pending = bytes
          }
          if (pending.length > 0) return yield* fail(`has more than the ${size} bytes declared`)
        }
        return filled
      })
    return { name, size, read, sequential: true }
  })
