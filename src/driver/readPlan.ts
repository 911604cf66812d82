/**
 * What a backup reads of its volume. A source may say where its data is
 * (a thin volume's holes read as zeros) and, for an incremental, where the
 * volume may differ from the parent backup (a dirty bitmap). Each sha block
 * is then read, known to be zeros, or known to be the parent's; only the
 * first kind is read and hashed. The digests of the others are the zero
 * block's or the parent's, so the documents come out as if every byte had
 * been read.
 */
import { createHash } from "node:crypto"
import { Deferred, Effect, FiberId } from "effect"
import type { CodecPool } from "../codec/pool.js"
import { hashInWorker } from "../codec/poolJobs.js"
import type { SlotPool } from "../codec/slots.js"
import { VolumeError } from "../domain/errors.js"
import { DIGEST_BYTES } from "./digests.js"
import type { Range } from "./extents.js"
import type { VolumeSource } from "./volumeSource.js"

/** How a sha block is known: read from the volume, all zeros, or unchanged since the parent. */
export const BlockKind = { read: 0, zero: 1, parent: 2 } as const

/** Where a volume's bytes have to come from; an absent list means "everywhere". */
export interface VolumeMap {
  /** where the volume holds data, sorted and disjoint; bytes elsewhere are zeros */
  readonly data?: ReadonlyArray<Range>
  /** where the volume may differ from the parent backup's, sorted and disjoint */
  readonly changed?: ReadonlyArray<Range>
}

/** Index of the first range that ends after `position`. */
const firstEndingAfter = (ranges: ReadonlyArray<Range>, position: number) => {
  let low = 0
  let high = ranges.length
  while (low < high) {
    const mid = (low + high) >>> 1
    if (ranges[mid]!.end <= position) low = mid + 1
    else high = mid
  }
  return low
}

/**
 * Gives blocks still to be read that meet no range of `ranges` the kind
 * `kind`. Only the gaps between the ranges that meet [start, end) are
 * visited, and filled at once when every block is still to be read
 * (`fresh`): a loop per block was most of a short backup's time, its code
 * never warm enough to be optimised.
 */
const markOutside = (kinds: Uint8Array, ranges: ReadonlyArray<Range>, start: number, end: number, blockSize: number, kind: number, fresh: boolean) => {
  let i = firstEndingAfter(ranges, start)
  let gapStart = start
  while (gapStart < end) {
    while (i < ranges.length && ranges[i]!.end <= ranges[i]!.start) i++
    const next = i < ranges.length && ranges[i]!.start < end ? ranges[i]! : undefined
    const gapEnd = next === undefined ? end : Math.max(gapStart, next.start)
    // The blocks wholly inside [gapStart, gapEnd); the volume's last block may be short.
    const first = Math.ceil((gapStart - start) / blockSize)
    const last = gapEnd === end ? kinds.length : Math.floor((gapEnd - start) / blockSize)
    if (fresh) kinds.fill(kind, first, Math.max(first, last))
    else for (let b = first; b < last; b++) if (kinds[b] === BlockKind.read) kinds[b] = kind
    if (next === undefined) break
    gapStart = Math.max(gapStart, next.end)
    i++
  }
}

/** The kind of each sha block of [start, end): a block meeting any data (or change) is read whole. */
export const classifyBlocks = (map: VolumeMap, start: number, end: number, blockSize: number): Uint8Array => {
  const kinds = new Uint8Array(Math.ceil((end - start) / blockSize))
  if (map.changed !== undefined) markOutside(kinds, map.changed, start, end, blockSize, BlockKind.parent, true)
  if (map.data !== undefined) markOutside(kinds, map.data, start, end, blockSize, BlockKind.zero, map.changed === undefined)
  return kinds
}

/** Maximal runs of blocks of one kind, as block index ranges [start, end); found by indexOf, not a loop per block. */
export const blockRuns = (kinds: Uint8Array, kind: number, from = 0, to = kinds.length): Array<Range> => {
  const runs: Array<Range> = []
  const view = from === 0 && to === kinds.length ? kinds : kinds.subarray(from, to)
  let b = view.indexOf(kind)
  while (b !== -1) {
    let e = b + 1
    while (e < view.length && view[e] === kind) e++
    runs.push({ start: from + b, end: from + e })
    b = e < view.length ? view.indexOf(kind, e) : -1
  }
  return runs
}

/** The bytes of a run of blocks. */
const blockBytes = (data: Uint8Array, run: Range, blockSize: number) => data.subarray(run.start * blockSize, Math.min(data.length, run.end * blockSize))

const KINDS = Object.values(BlockKind)

/** True when every block in [from, to) is of `kind`: no block of another kind is found. */
export const allOfKind = (kinds: Uint8Array, kind: number, from = 0, to = kinds.length) => {
  const view = from === 0 && to === kinds.length ? kinds : kinds.subarray(from, to)
  for (const other of KINDS) if (other !== kind && view.indexOf(other) !== -1) return false
  return true
}

/** The sha256 of `length` zero bytes (a volume's last block may be short). */
const zeroDigest = (() => {
  const known = new Map<number, Buffer>()
  return (length: number) => {
    let digest = known.get(length)
    if (digest === undefined) {
      digest = createHash("sha256").update(Buffer.alloc(length)).digest()
      known.set(length, digest)
    }
    return digest
  }
})()

/** A slot as the backup sees it: its place, its bytes, its blocks' kinds and digests. */
export interface ReadSlot {
  readonly offset: number
  /** a view of a slot of the pool; only blocks of kind `read` hold the volume's bytes */
  readonly data: Uint8Array
  readonly kinds: Uint8Array
  /** 32 bytes per block; a block of kind `parent` has the parent's */
  readonly digests: Uint8Array
  /**
   * True when `data` is a slot of the pool, to be handed back. A slot with
   * nothing to read (all hole, or all the parent's) takes none: its `data`
   * is a view of zeros that nothing writes, so such stretches flow past the
   * slots held by data, and the codec workers stay busy.
   */
  readonly pooled: boolean
}

/** The map a backup works from: the source's extents, and its changes when this is an incremental. */
export const volumeMapOf = (source: VolumeSource, incremental: boolean): Effect.Effect<VolumeMap, VolumeError> =>
  Effect.gen(function* () {
    const data = source.extents === undefined ? undefined : yield* source.extents
    const changed = incremental && source.changes !== undefined ? yield* source.changes : undefined
    return { ...(data === undefined ? {} : { data }), ...(changed === undefined ? {} : { changed }) }
  })

/** A parent backup's sha256 list: `count` digests, 32 bytes each. */
export interface ParentDigests {
  readonly count: number
  readonly digests: Uint8Array
}

/** Fibers per slot of the pool when slots need not wait for each other: those beyond the pool wait for it, or have nothing to read. */
const UNORDERED_FIBERS = 8

/** A slot's latches: its read done (a source read in order), its in-order step done. */
interface Turn {
  readonly read: Deferred.Deferred<void> | undefined
  readonly ordered: Deferred.Deferred<void> | undefined
}

export interface ReadSlotsOptions {
  readonly map: VolumeMap
  /**
   * Buffers for the slots' reads: of `slotSize` bytes, or of twice that,
   * which lets a slot's first block that is not the parent's land at the
   * buffer's middle whatever its offset in the slot, so that slots reading
   * little (a dirty bitmap's few changed blocks) keep touching the same
   * pages, never more than a slot's worth, instead of faulting in new ones
   * of a 50 MiB buffer each time (~80 ms of a 1 % bitmap incremental of
   * 8 GiB).
   */
  readonly slots: SlotPool
  /** bytes of the volume per slot */
  readonly slotSize: number
  readonly blockSize: number
  /** the parent's sha256 list, for blocks of kind `parent` */
  readonly parent: ParentDigests | undefined
  /** slots of the pool worked on at once */
  readonly concurrency: number
  /**
   * Whether `inOrder` must see the slots in volume order (an incremental's
   * objects are numbered in order as its changed runs are found). Without,
   * slots with nothing to read (a thin volume's holes) go on while slots of
   * data wait for the pool, and keep the main thread busy meanwhile.
   */
  readonly ordered: boolean
  /** told the bytes of each read */
  readonly onRead?: (bytes: number) => Effect.Effect<void>
}

/**
 * The volume as slots of `slotSize` bytes, each with the kinds and digests of
 * its blocks. `concurrency` slots are worked on at once, each read, hashed
 * and finished by one fiber: one stage, not a pipeline of them, because a
 * stage costs a fiber and a handoff per slot, which was most of a thin or
 * bitmap backup's time. `inOrder` sees the slots in volume order (where
 * objects are numbered) and `finish` takes its result; the results are in
 * volume order. A source read in order (a pipe) is read one slot after
 * another, in volume order. The volume must hold exactly `source.size`
 * bytes: a short read, or a byte past the end, is a VolumeError.
 */
export const processSlots = <B, A, E, R>(
  source: VolumeSource,
  options: ReadSlotsOptions,
  inOrder: (slot: ReadSlot) => B,
  finish: (b: B) => Effect.Effect<A, E, R>
): Effect.Effect<Array<A>, VolumeError | E, CodecPool | R> => {
  const { map, slots, slotSize, blockSize, parent } = options
  // Twice the slot: the view of a slot's bytes starts where its first read lands in the middle.
  const centred = slots.size >= 2 * slotSize
  const parentCount = parent?.count ?? 0
  const changedSize = (read: number) =>
    new VolumeError({ path: source.name, reason: `changed size during the backup: read ${read} bytes, expected ${source.size}` })
  const readRange = (buffer: Uint8Array, offset: number) =>
    Effect.flatMap(source.read(offset, buffer), (n) =>
      n === buffer.length ? (options.onRead?.(n) ?? Effect.void) : Effect.fail(changedSize(offset + n))
    )
  let zeros: Uint8Array | undefined
  // The digests of a run of zero blocks: a slot's worth of the zero block's digest, made once.
  let zeroRun: Uint8Array | undefined
  const zeroDigests = (count: number) => {
    if (zeroRun === undefined) {
      zeroRun = new Uint8Array(Math.ceil(slotSize / blockSize) * DIGEST_BYTES)
      const digest = zeroDigest(blockSize)
      for (let at = 0; at < zeroRun.length; at += DIGEST_BYTES) zeroRun.set(digest, at)
    }
    return zeroRun.subarray(0, count * DIGEST_BYTES)
  }
  const readSlot = (offset: number) =>
    Effect.gen(function* () {
      const end = Math.min(source.size, offset + slotSize)
      const kinds = classifyBlocks(map, offset, end, blockSize)
      const blocks = kinds.length
      const firstBlock = offset / blockSize
      // A block the parent's list does not reach counts as changed (as Cinder has it): it is read.
      for (let b = Math.max(0, parentCount - firstBlock); b < blocks; b++) if (kinds[b] === BlockKind.parent) kinds[b] = BlockKind.read
      const reads = blockRuns(kinds, BlockKind.read)
      const pooled = reads.length > 0
      // Shared memory, which V8 does not count as its own: a 50 MiB ArrayBuffer set off a full GC (~35 ms).
      zeros ??= pooled ? undefined : new Uint8Array(new SharedArrayBuffer(slotSize))
      // Only blocks not the parent's are ever touched (read, zeroed, compressed): the first of them goes to the middle.
      let untouched = 0
      while (centred && untouched < blocks && kinds[untouched] === BlockKind.parent) untouched++
      const start = pooled && centred ? slotSize - untouched * blockSize : 0
      const data = pooled ? (yield* slots.take).subarray(start, start + end - offset) : zeros!.subarray(0, end - offset)
      for (const run of reads) yield* readRange(blockBytes(data, run, blockSize), offset + run.start * blockSize)
      return { offset, data, kinds, reads, pooled }
    })
  const hashSlot = ({ offset, data, kinds, reads, pooled }: { offset: number; data: Uint8Array; kinds: Uint8Array; reads: Array<Range>; pooled: boolean }) =>
    Effect.gen(function* () {
      const blocks = kinds.length
      if (reads.length === 1 && reads[0]!.start === 0 && reads[0]!.end === blocks) {
        // The common case, a volume with no holes: one job for the whole slot.
        return { offset, data, kinds, pooled, digests: yield* hashInWorker(data, blockSize) }
      }
      const firstBlock = offset / blockSize
      // A slot all the parent's (a bitmap's clean stretch): the parent's digests as they are, not a copy.
      if (parent !== undefined && reads.length === 0 && allOfKind(kinds, BlockKind.parent)) {
        return { offset, data, kinds, pooled, digests: parent.digests.subarray(firstBlock * DIGEST_BYTES, (firstBlock + blocks) * DIGEST_BYTES) }
      }
      const digests = new Uint8Array(blocks * DIGEST_BYTES)
      if (reads.length > 0) {
        const hashed = yield* Effect.forEach(reads, (run) => hashInWorker(blockBytes(data, run, blockSize), blockSize), { concurrency: "unbounded" })
        reads.forEach((run, i) => digests.set(hashed[i]!, run.start * DIGEST_BYTES))
      }
      for (const run of blockRuns(kinds, BlockKind.zero)) {
        digests.set(zeroDigests(run.end - run.start), run.start * DIGEST_BYTES)
        // The volume's last block may be short: its own digest.
        const last = data.length - (run.end - 1) * blockSize
        if (last < blockSize) digests.set(zeroDigest(last), (run.end - 1) * DIGEST_BYTES)
      }
      for (const run of parent === undefined ? [] : blockRuns(kinds, BlockKind.parent)) {
        digests.set(parent!.digests.subarray((firstBlock + run.start) * DIGEST_BYTES, (firstBlock + run.end) * DIGEST_BYTES), run.start * DIGEST_BYTES)
      }
      return { offset, data, kinds, pooled, digests }
    })
  // Turns in volume order: a chain of latches, each slot's opened when it is done with its
  // in-order step (and, for a source read in order, its read), the next slot waiting for it.
  const count = Math.ceil(source.size / slotSize)
  const turns: Array<Turn> = []
  for (let i = 0; i < count; i++) {
    turns.push({
      read: source.sequential === true ? Deferred.unsafeMake<void>(FiberId.none) : undefined,
      ordered: options.ordered ? Deferred.unsafeMake<void>(FiberId.none) : undefined
    })
  }
  // Slots in order wait for each other, so no more of them than the pool holds may be under way
  // (or one waiting for the pool could be waited for by all that hold it); others only for the pool.
  const fibers = options.ordered || source.sequential === true ? options.concurrency : options.concurrency * UNORDERED_FIBERS
  const after = (latch: Deferred.Deferred<void> | undefined) => (latch === undefined ? Effect.void : Deferred.await(latch))
  const slotOf = (index: number) =>
    Effect.gen(function* () {
      const offset = index * slotSize
      const previous = index === 0 ? undefined : turns[index - 1]
      const mine = turns[index]!
      const read = mine.read === undefined ? readSlot(offset) : after(previous?.read).pipe(Effect.zipRight(readSlot(offset)), Effect.ensuring(Deferred.succeed(mine.read, undefined)))
      const slot = yield* Effect.flatMap(read, hashSlot)
      yield* after(previous?.ordered)
      const b = inOrder(slot)
      if (mine.ordered !== undefined) yield* Deferred.succeed(mine.ordered, undefined)
      return yield* finish(b)
    })
  // After the last byte: the volume must not go on (a file that grew meanwhile).
  const atEnd = Effect.flatMap(source.read(source.size, new Uint8Array(1)), (n) =>
    n === 0 ? Effect.void : Effect.fail(new VolumeError({ path: source.name, reason: `changed size during the backup: it has more than ${source.size} bytes` }))
  )
  // Effect.forEach, not a Stream's mapEffect: that cost about a millisecond per slot, most of an
  // incremental's time when a dirty bitmap leaves little to read. Slots start in volume order.
  return Effect.zipLeft(
    Effect.forEach(turns, (_, index) => slotOf(index), { concurrency: fibers }),
    atEnd
  )
}
