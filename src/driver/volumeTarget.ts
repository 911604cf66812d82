/**
 * Where a restore writes its volume: a VolumeTarget takes positional writes
 * and a final flush. A regular file or block device by path takes them in
 * any order (and hands its descriptor to the codec workers, which write
 * each checked object themselves); a pipe or a Stream takes them in volume
 * order only, each write where the previous one ended.
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import { Chunk, Effect, Exit, Queue, type Scope, Stream, Take } from "effect"
import { write as writeAt } from "node:fs"
import { VolumeError } from "../domain/errors.js"
import { openTarget } from "./volume.js"

/** Where a restore writes: positional (or in-order) writes and a final flush. Made by `fileTarget`, `orderedTarget` or `writableTarget`. */
export interface VolumeTarget {
  /** How messages name it: its path, or what the stream is ("standard output"). */
  readonly name: string
  /** Writes must come in volume order, from 0 and without gaps (a pipe). */
  readonly ordered: boolean
  /** A new, zeroed volume: all-zero parts need not be written (they stay holes). */
  readonly zeroed: boolean
  /** A file descriptor the codec workers may write to at offsets, instead of `write`. */
  readonly fd?: number
  /** Writes all of `bytes` at `position`; the bytes may be reused once it returns. */
  readonly write: (position: number, bytes: Uint8Array) => Effect.Effect<void, VolumeError>
  /** Makes what was written durable (or delivered); once, at the end. */
  readonly flush: Effect.Effect<void, VolumeError>
}

/**
 * Opens a target for a volume of `size` bytes, within the restore's scope.
 * A restore calls it only after every document of the chain is read and
 * checked, so a refused restore never touches the target.
 */
export type OpenTarget<R = never> = (size: number) => Effect.Effect<VolumeTarget, VolumeError, R | Scope.Scope>

/**
 * A regular file (created when missing) or a block device, written at
 * offsets by the codec workers. `fresh`: the target is new and zeroed, so a
 * file is cut to the volume's size and its all-zero ranges stay holes (a
 * missing file is always fresh). A named pipe, socket or character device
 * is written in order instead.
 */
export const fileTarget = (path: string, options: { readonly fresh?: boolean } = {}): OpenTarget<FileSystem.FileSystem> => (size) =>
  Effect.gen(function* () {
    // The descriptor belongs to a File that closes with the scope.
    const opened = yield* openTarget(path, size, options.fresh ?? false)
    if (opened.type !== "File" && opened.type !== "BlockDevice") {
      // A named pipe, socket or character device (/dev/stdout): no offsets, so the volume goes in order.
      return yield* orderedTarget(path, (bytes) => writeFrom(path, opened.fd, bytes, null))(size)
    }
    const write = (position: number, bytes: Uint8Array) => writeFrom(path, opened.fd, bytes, position)
    return { name: path, ordered: false, zeroed: opened.sparse, fd: opened.fd, write, flush: opened.sync }
  })

/** Writes all of `bytes` to `fd` at `position`, or where the descriptor is (`null`: a pipe). */
const writeFrom = (name: string, fd: number, bytes: Uint8Array, position: number | null) =>
  Effect.async<void, VolumeError>((resume) => {
    const next = (done: number): void => {
      if (done === bytes.length) return resume(Effect.void)
      writeAt(fd, bytes, done, bytes.length - done, position === null ? null : position + done, (error, n) =>
        error ? resume(Effect.fail(writeFailed(name, error))) : next(done + n)
      )
    }
    next(0)
  })

/** The bytes a write hands on at most: a consumer's chunks stay small whatever the objects' size. */
const PART = 1024 * 1024

/**
 * A target that takes the volume in order and hands each part to `deliver`
 * (which must be done with the bytes when it returns, or copy them). Writes
 * out of order are a defect of the caller; a restore orders them itself.
 */
export const orderedTarget = (
  name: string,
  deliver: (bytes: Uint8Array) => Effect.Effect<void, VolumeError>,
  flush: Effect.Effect<void, VolumeError> = Effect.void
): OpenTarget => (size) =>
  Effect.sync(() => {
    let next = 0
    const write = (position: number, bytes: Uint8Array) =>
      Effect.suspend(() => {
        if (position !== next) return Effect.dieMessage(`${name}: a write at ${position}, but the volume is at ${next}`)
        if (position + bytes.length > size) return Effect.dieMessage(`${name}: a write past the ${size}-byte volume's end`)
        next += bytes.length
        const parts: Array<Uint8Array> = []
        for (let at = 0; at < bytes.length; at += PART) parts.push(bytes.subarray(at, at + PART))
        return Effect.forEach(parts, deliver, { discard: true })
      })
    const finish = Effect.suspend(() =>
      next === size ? flush : Effect.dieMessage(`${name}: flushed after ${next} of ${size} bytes`)
    )
    return { name, ordered: true, zeroed: false, write, flush: finish }
  })

/**
 * A Node.js writable stream (standard output, a pipe, a socket) as an
 * ordered target. It is not ended: the caller owns it. Each part is copied,
 * as a stream may hand a chunk on by reference (a PassThrough does). While
 * the target is open, the stream's errors (EPIPE when the reader goes away)
 * fail the write instead of crashing the process.
 */
export const writableTarget = (writable: NodeJS.WritableStream, name: string): OpenTarget => (size) =>
  Effect.gen(function* () {
    const ignore = () => {}
    yield* Effect.acquireRelease(Effect.sync(() => writable.on("error", ignore)), () => Effect.sync(() => writable.off("error", ignore)))
    const deliver = (bytes: Uint8Array) =>
      Effect.async<void, VolumeError>((resume) => {
        writable.write(Buffer.from(bytes), (error) => resume(error ? Effect.fail(writeFailed(name, error)) : Effect.void))
      })
    return yield* orderedTarget(name, deliver)(size)
  })

const writeFailed = (name: string, error: Error) =>
  new VolumeError({
    path: name,
    reason: (error as NodeJS.ErrnoException).code === "EPIPE" ? "the reader closed the pipe before the volume's end (EPIPE)" : `write failed: ${error.message}`,
    cause: error,
    ...codeOf(error)
  })

const codeOf = (error: Error) => {
  const code = (error as NodeJS.ErrnoException).code
  return code === undefined ? {} : { code }
}

/**
 * The volume a program restores, as a Stream of its bytes in order (copies,
 * at most 1 MiB each): `program` gets an ordered target and runs while the
 * stream is pulled, at most a few parts ahead of the consumer. The stream
 * fails with the program's error; a consumer that stops early interrupts it.
 */
export const targetStream = <A, E, R>(
  name: string,
  program: (target: OpenTarget) => Effect.Effect<A, E, R>
): Stream.Stream<Uint8Array, E, R> =>
  Stream.unwrapScoped(
    Effect.gen(function* () {
      const queue = yield* Queue.bounded<Take.Take<Uint8Array, E>>(4)
      const target = orderedTarget(name, (bytes) => Queue.offer(queue, Take.chunk(Chunk.of(bytes.slice()))).pipe(Effect.asVoid))
      yield* program(target).pipe(
        Effect.exit,
        Effect.flatMap((exit) => Queue.offer(queue, Exit.isSuccess(exit) ? Take.end : Take.failCause(exit.cause))),
        Effect.forkScoped
      )
      return Stream.fromQueue(queue).pipe(Stream.flattenTake)
    })
  )
