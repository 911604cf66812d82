/**
 * Chunk slots: a fixed set of buffers in shared memory that the main thread
 * and the codec workers both see. A chunk read into a slot is hashed and
 * compressed by a worker in place, and a restored object is decompressed
 * into one, so no chunk-sized buffer crosses a thread by transfer.
 *
 * Why: every transferred 50 MiB ArrayBuffer is new external memory to the
 * receiving isolate, and V8 answers with a full GC of the main heap (~55 MB
 * of Effect code and data): measured, a 1 GiB backup ran 29 mark-compacts
 * and spent ~1.5 s of CPU marking. Shared slots cause none, and they bound
 * the memory a backup or restore holds to `count × size`.
 */
import { Effect, Option, Queue, type Scope } from "effect"

export interface SlotPool {
  /** The size of every slot. */
  readonly size: number
  /** A free slot (a whole-slot view); waits while all are in use, first come first served. */
  readonly take: Effect.Effect<Uint8Array>
  /** Hands a slot back; its bytes are reused by the next `take`. */
  readonly give: (slot: Uint8Array) => Effect.Effect<void>
}

/** True when `view` lives in shared memory (a slot, or a part of one). */
export const isShared = (view: Uint8Array) => view.buffer instanceof SharedArrayBuffer

/** For a worker: shared data as it is; a whole buffer to transfer; a view into a larger buffer copied, so the rest survives. */
export const sendable = (data: Uint8Array): Uint8Array =>
  isShared(data) || (data.byteOffset === 0 && data.byteLength === data.buffer.byteLength) ? data : data.slice()

/** The buffer to transfer with `data`: none when it is shared. */
export const transferOf = (data: Uint8Array): Array<ArrayBuffer> => (isShared(data) ? [] : [data.buffer as ArrayBuffer])

/**
 * Slot buffers an operation has finished with, kept for the next one: V8
 * frees a SharedArrayBuffer only when a full GC finds it dead, so a
 * long-lived process that made new slots for every restore grew by
 * gigabytes (the fuzzer's 1,500 in-process restores reached ~4 GiB RSS).
 * Kept by size, at most SPARE_LIMIT bytes of them.
 */
const SPARE_LIMIT = 128 * 1024 * 1024
const spare = new Map<number, Array<SharedArrayBuffer>>()
let spareBytes = 0
let buffersMade = 0

const slotBuffer = (size: number): SharedArrayBuffer => {
  const kept = spare.get(size)?.pop()
  if (kept !== undefined) {
    spareBytes -= size
    return kept
  }
  buffersMade++
  return new SharedArrayBuffer(size)
}

const keepSpare = (buffer: SharedArrayBuffer) => {
  if (spareBytes + buffer.byteLength > SPARE_LIMIT) return
  spareBytes += buffer.byteLength
  const same = spare.get(buffer.byteLength)
  if (same === undefined) spare.set(buffer.byteLength, [buffer])
  else same.push(buffer)
}

/** How many slot buffers this process has allocated so far (a reused one is not counted again). */
export const slotBuffersMade = () => buffersMade

/**
 * At most `count` slots of `size` bytes, allocated on first use, so a small
 * volume never pays for all of them. A reused slot holds whatever its last
 * user left in it. When the scope closes (the operation, its workers' jobs
 * and its writes are over), its buffers are kept for the next pool.
 */
export const makeSlotPool = (size: number, count: number): Effect.Effect<SlotPool, never, Scope.Scope> =>
  Effect.gen(function* () {
    const free = yield* Queue.unbounded<Uint8Array>()
    const made = yield* Effect.acquireRelease(
      Effect.sync((): Array<SharedArrayBuffer> => []),
      (buffers) => Effect.sync(() => buffers.forEach(keepSpare))
    )
    const take = Effect.flatMap(Queue.poll(free), (slot) => {
      if (Option.isSome(slot)) return Effect.succeed(slot.value)
      if (made.length < count) {
        return Effect.sync(() => {
          const buffer = slotBuffer(size)
          made.push(buffer)
          return new Uint8Array(buffer)
        })
      }
      return Queue.take(free)
    })
    const give = (slot: Uint8Array) => Queue.offer(free, new Uint8Array(slot.buffer)).pipe(Effect.asVoid)
    return { size, take, give }
  })
