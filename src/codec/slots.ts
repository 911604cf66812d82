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
import { Effect, Option, Queue } from "effect"

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
 * At most `count` slots of `size` bytes, allocated on first use, so a small
 * volume never pays for all of them.
 */
export const makeSlotPool = (size: number, count: number): Effect.Effect<SlotPool> =>
  Effect.gen(function* () {
    const free = yield* Queue.unbounded<Uint8Array>()
    let made = 0
    const take = Effect.flatMap(Queue.poll(free), (slot) => {
      if (Option.isSome(slot)) return Effect.succeed(slot.value)
      if (made < count) {
        made++
        return Effect.sync(() => new Uint8Array(new SharedArrayBuffer(size)))
      }
      return Queue.take(free)
    })
    const give = (slot: Uint8Array) => Queue.offer(free, new Uint8Array(slot.buffer)).pipe(Effect.asVoid)
    return { size, take, give }
  })
