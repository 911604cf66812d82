/**
 * Backup: Cinder's ChunkedBackupDriver.backup, written once over the
 * ObjectStore and BackupCatalog services.
 *
 * The volume is read chunk by chunk. Each chunk's sha blocks are hashed; a
 * full backup writes the chunk as one object, an incremental one writes each
 * maximal run of blocks that changed since the parent. Objects are numbered
 * in volume order as they are cut, then compressed and written concurrently.
 * The sha256 file and then the metadata are written last; only then is the
 * record `available`. Any failure or interruption deletes what was written.
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import { Effect, Exit, Fiber, Option, Stream } from "effect"
import { prepareObject, prepareObjects } from "../codec/codec.js"
import { CodecPool } from "../codec/pool.js"
import { makeSlotPool } from "../codec/slots.js"
import { parseCompression } from "../domain/compression.js"
import { FORMAT_VERSION, type BackupMetadata } from "../domain/documents.js"
import { BackupCancelled, InvalidBackup, InvalidRequest, VolumeBusy } from "../domain/errors.js"
import { newBackupRecord, type BackupRecord, type NewBackup } from "../domain/record.js"
import { cinderTimestamp, encodeDocument, encodeSha256File } from "../format/documents.js"
import { BackupCatalog } from "../catalog/BackupCatalog.js"
import { ObjectStore } from "../store/ObjectStore.js"
import { dataObjectName, metadataName, readSha256File, sha256Name } from "./objects.js"
import { holdLease, leaseExpired, type LeaseOptions } from "./lease.js"
import { cleanUpAfterBackup } from "./cleanup.js"
import { makeProgress, type ProgressOptions } from "./progress.js"
import { makeDigestList, sameDigest } from "./digests.js"
import { groupPlacements } from "./jobGroups.js"
import { allOfKind, BlockKind, blockRuns, processSlots, volumeMapOf, type ParentDigests, type ReadSlot } from "./readPlan.js"
import { fileSource, type VolumeSource } from "./volumeSource.js"
import { VolumeMetadata } from "./VolumeMetadata.js"

/** Settings of a backup: chunking, compression, concurrency, progress and lease. */
export interface BackupOptions extends ProgressOptions, LeaseOptions {
  /** Cinder's backup_compression_algorithm; default zlib. */
  readonly compression?: string
  /** bytes per object of a full backup; default: the store's */
  readonly chunkSize?: number
  /** granularity of change tracking; default: the store's */
  readonly shaBlockSize?: number
  /** objects compressed and written at once; default: the store's hint */
  readonly concurrency?: number
  /** clock for the object-name prefix (tests pin it) */
  readonly now?: Date
}

/** A piece of the volume that becomes one data object. */
interface Piece {
  readonly offset: number
  readonly data: Uint8Array
}

/** Effect.forEach with `concurrency`, but one item runs in the calling fiber: a fork per object was a thin backup's main cost. */
const forEachAtOnce = <A, B, E, R>(items: ReadonlyArray<A>, f: (a: A, i: number) => Effect.Effect<B, E, R>, concurrency: number | "unbounded") =>
  items.length === 0 ? Effect.succeed<Array<B>>([]) : items.length === 1 ? Effect.map(f(items[0]!, 0), (b) => [b]) : Effect.forEach(items, f, { concurrency })

/** The offset of a metadata object entry. */
const offsetOf = (entry: BackupMetadata["objects"][number]) => Object.values(entry)[0]!.offset

/** Slots of small chunks hold several of them, up to this many bytes. */
const SLOT_BYTES = 4 * 1024 * 1024
/** A compression batch: at most this many pieces, of at most this many bytes in all (a piece of more than half goes alone). */
const BATCH_PIECES = 64
const BATCH_BYTES = 1024 * 1024

/**
 * Runs of changed blocks inside one chunk; a run never crosses the chunk's
 * end. `digests` and `kinds` are the slot's, from the chunk's first block at
 * `inSlot`; `index` is that block's in the volume.
 */
const changedRuns = (chunk: Piece, digests: Uint8Array, kinds: Uint8Array, inSlot: number, parent: ParentDigests, index: number, blockSize: number): Array<Piece> => {
  const pieces: Array<Piece> = []
  const blocks = Math.ceil(chunk.data.length / blockSize)
  // A chunk all the parent's (a dirty bitmap's clean stretch) has no runs.
  if (allOfKind(kinds, BlockKind.parent, inSlot, inSlot + blocks)) return pieces
  let start = -1
  const close = (end: number) => {
    pieces.push({ offset: chunk.offset + start, data: chunk.data.subarray(start, end) })
    start = -1
  }
  for (let i = 0; i < blocks; i++) {
    // Equal bytes are equal hex, as Cinder compares them; blocks past the parent's end count as changed.
    // A block the source says is the parent's (a dirty bitmap's clean block) is unchanged.
    const changed =
      kinds[inSlot + i] !== BlockKind.parent && (index + i >= parent.count || !sameDigest(digests, inSlot + i, parent.digests, index + i))
    if (changed && start === -1) start = i * blockSize
    if (!changed && start !== -1) close(i * blockSize)
  }
  if (start !== -1) close(chunk.data.length)
  return pieces
}

const checkSizes = (chunkSize: number, shaBlockSize: number) =>
  !Number.isSafeInteger(chunkSize) || !Number.isSafeInteger(shaBlockSize) || chunkSize <= 0 || shaBlockSize <= 0
    ? Effect.fail(new InvalidRequest({ reason: `chunk size ${chunkSize} and sha block size ${shaBlockSize} must be positive integers` }))
    : chunkSize % shaBlockSize !== 0
      ? Effect.fail(new InvalidRequest({ reason: `chunk size ${chunkSize} is not a multiple of the sha block size ${shaBlockSize}` }))
      : Effect.void

/**
 * A source that knows its changes since a parent (a dirty bitmap) makes
 * sense only for an incremental of a parent of the same size.
 */
const checkChanges = (source: VolumeSource, parent: BackupRecord | undefined) =>
  source.changes === undefined
    ? Effect.void
    : parent === undefined
      ? Effect.fail(new InvalidRequest({ reason: `${source.name} reports changes since a parent backup (a dirty bitmap), but this is a full backup: a full backup reads every byte` }))
      : parent.volume_size_bytes !== source.size
        ? Effect.fail(new InvalidRequest({
            reason: `${source.name} is ${source.size} bytes but parent backup ${parent.id} is of ${parent.volume_size_bytes}: its changes (a dirty bitmap) cannot be since that backup`
          }))
        : Effect.void

/** The parent's sha256 list, after Cinder's two refusals. */
const parentDigestsFor = (record: BackupRecord, shaBlockSize: number, source: VolumeSource) =>
  Effect.gen(function* () {
    if (record.parent_id === null) return undefined
    const catalog = yield* BackupCatalog
    const parent = yield* catalog.get(record.parent_id).pipe(
      Effect.catchTag("BackupNotFound", () =>
        Effect.fail(new InvalidBackup({ backupId: record.id, reason: `parent backup ${record.parent_id} does not exist` }))
      )
    )
    if (parent.status !== "available") {
      return yield* new InvalidBackup({ backupId: record.id, reason: `parent backup ${parent.id} is ${parent.status}, not available` })
    }
    yield* checkChanges(source, parent)
    const shaFile = yield* readSha256File(parent)
    if (shaFile.chunk_size !== shaBlockSize) {
      return yield* new InvalidBackup({
        backupId: record.id,
        reason: `hash block size has changed since the last backup (new ${shaBlockSize}, old ${shaFile.chunk_size}); do a full backup`
      })
    }
    if (record.size > parent.size || record.volume_size_bytes > parent.volume_size_bytes) {
      return yield* new InvalidBackup({ backupId: record.id, reason: "volume size increased since the last backup; do a full backup" })
    }
    return shaFile
  })

/**
 * Backs up `volume` (a path, or a VolumeSource) into the record `backupId`,
 * which must exist in status `creating`. Resolves with the `available` record.
 */
export const runBackup = (backupId: string, volume: string | VolumeSource, options: BackupOptions = {}) =>
  Effect.gen(function* () {
    const store = yield* ObjectStore
    const catalog = yield* BackupCatalog
    const initial = yield* catalog.get(backupId)
    if (initial.status !== "creating") {
      return yield* new InvalidRequest({ reason: `backup ${backupId} is ${initial.status}, not creating` })
    }
    // From here on, any failure or interruption cleans up and marks the record (once).
    let cleaned = false
    const work = Effect.gen(function* () {
      const chunkSize = options.chunkSize ?? store.defaults.chunkSize
      const shaBlockSize = options.shaBlockSize ?? store.defaults.shaBlockSize
      yield* checkSizes(chunkSize, shaBlockSize)
      const compression = yield* parseCompression(options.compression ?? "zlib")
      const source = typeof volume === "string" ? yield* fileSource(volume) : volume
      // Where the source's data and changes are (over NBD, block status the server answers at its
      // pace) is asked for while the parent's sha256 file is read. Holes are not read, nor (with a
      // dirty bitmap) what is the parent's.
      const [parent, map] = yield* Effect.all([parentDigestsFor(initial, shaBlockSize, source), volumeMapOf(source, initial.parent_id !== null)], {
        concurrency: "unbounded"
      })
      if (parent === undefined) yield* checkChanges(source, undefined)

      const container = store.containerFor(initial)
      yield* store.ensureContainer(container)
      const prefix = store.objectPrefix(initial, options.now ?? new Date())
      const record = yield* catalog.update(backupId, (r) => ({ ...r, container, service_metadata: prefix, service: store.defaults.service }))
      const extra = store.extraMetadata(record)

      const body = Effect.gen(function* () {
        const progress = yield* makeProgress("backup", backupId, record.volume_size_bytes, options)
        // Small chunks are read several to a slot, hashed in one job and
        // compressed in batches: a backup of many small objects then costs a
        // few worker round trips per slot, not two per object.
        const chunksPerSlot = Math.max(1, Math.floor(SLOT_BYTES / chunkSize))
        const slotSize = Math.min(chunksPerSlot * chunkSize, record.volume_size_bytes)
        const blocksPerChunk = chunkSize / shaBlockSize
        const digests = makeDigestList(Math.ceil(slotSize / shaBlockSize))
        let objectIndex = 0
        const concurrency = Math.max(1, options.concurrency ?? store.defaults.concurrency)
        // A slot holds its chunks from being read until their objects are stored:
        // at most `concurrency` slots (plus their compressed copies) in memory.
        // With a dirty bitmap a slot may read a little of itself anywhere: buffers of twice
        // the slot keep those reads on the same pages (processSlots).
        const bitmap = parent !== undefined && source.changes !== undefined
        const slots = yield* makeSlotPool(bitmap ? 2 * slotSize : slotSize, concurrency)
        type Named = { readonly piece: Piece; readonly name: string }
        const prepared = (batch: ReadonlyArray<Named>) =>
          batch.length === 1 ? Effect.map(prepareObject(compression, batch[0]!.piece.data), (object) => [object]) : prepareObjects(compression, batch.map((b) => b.piece.data))
        const writeBatch = (batch: ReadonlyArray<Named>, compressed: ReturnType<typeof prepared>) =>
          Effect.gen(function* () {
            const objects = yield* compressed
            return yield* forEachAtOnce(
              batch,
              ({ piece, name }, i) => {
                const { algorithm, bytes, md5 } = objects[i]!
                // Objects count as they are stored (Cinder's every-N-objects rhythm), with their bytes;
                // the bytes of their slot that no object holds (unchanged blocks) when the slot is done.
                return store.put(container, name, bytes, extra).pipe(
                  Effect.zipRight(progress.stored(piece.data.length, bytes.length)),
                  Effect.zipRight(progress.advance(piece.data.length, 1)),
                  Effect.as({ [name]: { compression: algorithm, length: piece.data.length, md5, offset: piece.offset } })
                )
              },
              concurrency
            )
          })
        // A piece that is all hole is the zero object, compressed once per length.
        const zeroObject = yield* Effect.cachedFunction((length: number) => prepareObject(compression, new Uint8Array(length)))
        const piecesOf = ({ offset, data, kinds, digests: slotDigests, pooled }: ReadSlot) => {
          const first = offset / shaBlockSize
          digests.set(offset / slotSize, slotDigests)
          const pieces: Array<Piece> = []
          for (let j = 0; j * chunkSize < data.length; j++) {
            const chunk = { offset: offset + j * chunkSize, data: data.subarray(j * chunkSize, (j + 1) * chunkSize) }
            if (parent === undefined) pieces.push(chunk)
            else for (const run of changedRuns(chunk, slotDigests, kinds, j * blocksPerChunk, parent, first + j * blocksPerChunk, shaBlockSize)) pieces.push(run)
          }
          const zeros: Array<Piece> = []
          const written: Array<Piece> = []
          for (const piece of pieces) {
            const from = (piece.offset - offset) / shaBlockSize
            const to = from + Math.ceil(piece.data.length / shaBlockSize)
            if (allOfKind(kinds, BlockKind.zero, from, to)) zeros.push(piece)
            else {
              written.push(piece)
              // Its holes were not read: the slot holds old bytes there.
              if (pooled) for (const run of blockRuns(kinds, BlockKind.zero, from, to)) data.fill(0, run.start * shaBlockSize, Math.min(data.length, run.end * shaBlockSize))
            }
          }
          return { pieces, zeros, written }
        }
        // Named here (in volume order for an incremental), whatever finishes first below.
        const nameSlot = (slot: ReadSlot) => {
          const { pieces, zeros, written } = piecesOf(slot)
          // A full backup's objects are its chunks, numbered by offset; an incremental's are numbered as they are found.
          const names = new Map(pieces.map((piece, i) => [piece, dataObjectName(prefix, parent === undefined ? piece.offset / chunkSize + 1 : objectIndex + 1 + i)]))
          objectIndex += pieces.length
          const sized = written.map((piece) => ({ piece, name: names.get(piece)!, object: { length: piece.data.length } }))
          const unchanged = slot.data.length - pieces.reduce((sum, piece) => sum + piece.data.length, 0)
          const zeroPieces = zeros.map((piece) => ({ piece, name: names.get(piece)! }))
          return { slot, pieces, unchanged, zeroPieces, batches: groupPlacements(sized, BATCH_BYTES, BATCH_PIECES) }
        }
        const storeSlot = ({ slot, pieces, unchanged, zeroPieces, batches }: ReturnType<typeof nameSlot>) => {
          const writes = forEachAtOnce(batches, (batch) => writeBatch(batch, prepared(batch)), "unbounded")
          const zeroWrites = forEachAtOnce(zeroPieces, (item) => writeBatch([item], Effect.map(zeroObject(item.piece.data.length), (object) => [object])), "unbounded")
          // A slot with nothing to store (all the parent's) forks nothing, and one with one kind of objects no second fiber.
          const stored =
            pieces.length === 0
              ? Effect.succeed([])
              : (zeroPieces.length === 0 || batches.length === 0 ? Effect.zip(writes, zeroWrites) : Effect.all([writes, zeroWrites], { concurrency: "unbounded" })).pipe(
                  // Entries in volume order, as Cinder lists them.
                  Effect.map(([entries, zeroEntries]) =>
                    zeroEntries.length === 0 ? entries.flat() : [...entries.flat(), ...zeroEntries.flat()].sort((a, b) => offsetOf(a) - offsetOf(b))
                  )
                )
          return stored.pipe(
            Effect.zipLeft(slot.pooled ? slots.give(slot.data) : Effect.void),
            Effect.tap(() => progress.advance(unchanged, 0)),
            Effect.map((entries) => ({ offset: slot.offset, entries }))
          )
        }
        // Unordered: a slot of data being compressed does not hold back the
        // slots after it (a thin volume's holes, a bitmap's clean stretches).
        const objects = yield* processSlots(source, { map, slots, slotSize, blockSize: shaBlockSize, parent, concurrency, ordered: parent !== undefined, onRead: progress.read }, nameSlot, storeSlot).pipe(
          Effect.map((slotsDone) => {
            const all: Array<BackupMetadata["objects"][number]> = []
            // Entries in volume order, as Cinder lists them; a loop, not push(...entries): a slot can have more objects than a call takes arguments.
            for (const { entries } of slotsDone) for (const entry of entries) all.push(entry)
            return all
          })
        )
        const volumeMeta = yield* Effect.serviceOption(VolumeMetadata).pipe(
          Effect.flatMap(Option.match({ onNone: () => Effect.succeed(null), onSome: (api) => api.get(record.volume_id) }))
        )
        const common = {
          version: FORMAT_VERSION,
          backup_id: record.id,
          volume_id: record.volume_id,
          backup_name: record.display_name,
          backup_description: record.display_description,
          created_at: cinderTimestamp(record.created_at)
        }
        const metadata: BackupMetadata = {
          ...common,
          objects,
          parent_id: record.parent_id,
          // Cinder stores no metadata for an empty answer.
          volume_meta: volumeMeta === "" ? null : volumeMeta,
          ...(extra === undefined || extra === null ? {} : { extra_metadata: extra })
        }
        // The metadata goes last: its presence marks a complete backup.
        yield* store.put(container, sha256Name(prefix), encodeSha256File({ ...common, chunk_size: shaBlockSize }, digests.count(), digests.hexAt, digests.writeItems), extra)
        yield* store.put(container, metadataName(prefix), encodeDocument(metadata), extra)
        yield* progress.finish
        // Compare-and-set: a record claimed meanwhile (cancel, cleanup) is not made available.
        const done = yield* catalog.update(backupId, (r) =>
          r.status === "creating" ? { ...r, status: "available", object_count: objectIndex, lease_expires_at: null } : r
        )
        if (done.status !== "available") return yield* new BackupCancelled({ backupId })
        return done
      }).pipe(Effect.scoped)

      // Cancellation: the record leaving `creating` (Cinder: deleting/deleted) interrupts the body;
      // `available` is the body's own last write, which the body may still be closing its scope after.
      const cancelled = catalog.watch(backupId).pipe(
        Stream.filter((status) => status !== "creating" && status !== "available"),
        Stream.runHead,
        Effect.flatMap(Option.match({ onNone: () => Effect.never, onSome: () => Effect.fail(new BackupCancelled({ backupId })) }))
      )

      const lease = yield* holdLease(backupId, options)
      // The body runs in its own fiber, and cleanup waits for it to end: a
      // write still in flight when the race is decided must not land after
      // cleanup has listed the prefix. Cleanup runs under the lease still
      // held, so it needs no claim of its own (a cancel is timed).
      const running = yield* Effect.fork(body)
      return yield* Effect.raceFirst(Fiber.join(running), cancelled).pipe(
        Effect.onExit(() => Fiber.interrupt(running)),
        Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : Effect.suspend(() => ((cleaned = true), cleanUpAfterBackup(backupId, exit.cause, options, lease)))))
      )
    }).pipe(Effect.scoped)
    // Failures before the lease was held are cleaned up here, claiming the record.
    return yield* work.pipe(Effect.onExit((exit) => (Exit.isSuccess(exit) || cleaned ? Effect.void : cleanUpAfterBackup(backupId, exit.cause, options))))
  }).pipe(Effect.withSpan("chunked-backup.backup", { attributes: { backupId } }))

/**
 * One backup of a volume at a time, as Cinder refuses a volume that is
 * backing-up. The catalog lists records in creation order, so of two racing
 * backups the first created proceeds and the other sees it and is refused.
 */
const refuseConcurrent = (backupId: string, volumeId: string, options: LeaseOptions) =>
  Effect.gen(function* () {
    const catalog = yield* BackupCatalog
    const now = new Date()
    const running = (yield* catalog.list({ volumeId, statuses: ["creating"] })).filter(
      (r) => r.id === backupId || !leaseExpired(r, now, options)
    )
    const first = running[0]
    if (first !== undefined && first.id !== backupId) {
      // Refused before it started: the record held nothing, so it goes, as if never made.
      yield* catalog.remove(backupId, ["creating"])
      return yield* new VolumeBusy({ volumeId, backupId: first.id })
    }
  })

/**
 * Cinder's refusals of an incremental that need only the catalog, made before
 * any record exists: the parent must exist, be available, be of the same
 * volume and not be smaller. (runBackup makes them again for its own callers.)
 */
const checkParent = (parentId: string, volumeId: string, volumeBytes: number) =>
  Effect.gen(function* () {
    const refuse = (reason: string) => Effect.fail(new InvalidRequest({ reason }))
    const parent = yield* (yield* BackupCatalog).get(parentId).pipe(
      Effect.catchTag("BackupNotFound", () => refuse(`parent backup ${parentId} does not exist`))
    )
    if (parent.volume_id !== volumeId) {
      return yield* refuse(`backup ${parent.id} is of volume ${parent.volume_id}, not ${volumeId}: an incremental needs a parent of the same volume`)
    }
    if (parent.status !== "available") return yield* refuse(`parent backup ${parent.id} is ${parent.status}, not available`)
    if (volumeBytes > parent.volume_size_bytes) {
      return yield* refuse(`volume size increased since backup ${parent.id}; do a full backup`)
    }
    return parent
  })

/**
 * Creates the record (status `creating`, size from the volume) and backs up
 * into it: what `cinder backup-create` plus the backup manager do. `volume`
 * is a path (a regular file or block device) or a VolumeSource (for
 * example a stream with a declared size).
 */
export const backup = (
  fields: Omit<NewBackup, "volume_size_bytes"> & { readonly volume_size_bytes?: number },
  volume: string | VolumeSource,
  options: BackupOptions = {}
) =>
  Effect.gen(function* () {
    const catalog = yield* BackupCatalog
    const store = yield* ObjectStore
    const source = typeof volume === "string" ? yield* fileSource(volume) : volume
    if (source.size === 0) return yield* new InvalidRequest({ reason: `volume ${source.name} is empty` })
    // Bad options are refused before a record exists (runBackup checks them again, for its own callers).
    yield* checkSizes(options.chunkSize ?? store.defaults.chunkSize, options.shaBlockSize ?? store.defaults.shaBlockSize)
    yield* parseCompression(options.compression ?? "zlib")
    const parent = fields.parent_id === undefined || fields.parent_id === null ? undefined : yield* checkParent(fields.parent_id, fields.volume_id, source.size)
    yield* checkChanges(source, parent)
    const createdAt = new Date(Math.floor((fields.created_at ?? new Date()).getTime() / 1000) * 1000)
    yield* catalog.create(newBackupRecord({ volume_size_bytes: source.size, ...fields, created_at: createdAt, status: "creating" }))
    yield* refuseConcurrent(fields.id, fields.volume_id, options)
    return yield* runBackup(fields.id, source, options)
  }).pipe(Effect.scoped)

/** The services a backup needs. */
export type BackupRequirements = ObjectStore | BackupCatalog | FileSystem.FileSystem | CodecPool

/** Every error a backup can end with: refused requests, volume, store, catalog and codec failures, cancellation. */
export type BackupError = Effect.Effect.Error<ReturnType<typeof backup>>
