/**
 * Restore: Cinder's ChunkedBackupDriver.restore, flattened. Every backup of
 * the chain has its documents read and its object list checked first; then
 * each byte of the volume is taken from the newest object covering it, so an
 * object is fetched at most once and shadowed objects not at all. A codec
 * worker reads each object, decompresses it into a slot, checks its length
 * and md5 and only then writes its visible ranges; the target is fsynced
 * once at the end. A fresh target stays sparse: all-zero parts are not
 * written (safe, as every byte is written only once).
 *
 * The requested backup is `restoring` for the duration; when its status
 * changes, the restore is interrupted and fails with RestoreCancelled.
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import { Effect, Option, Stream } from "effect"
import { decompressionFailed, openObject, recordedAlgorithm } from "../codec/codec.js"
import type { CodecPool } from "../codec/pool.js"
import { restoreInWorker, type RestoreObjectJob } from "../codec/poolJobs.js"
import { makeSlotPool } from "../codec/slots.js"
import { DIGEST_BYTES } from "./digests.js"
import { dataObjects, type BackupMetadata, type DataObject } from "../domain/documents.js"
import { CompressionError, IntegrityError, InvalidBackup, InvalidRequest, RestoreCancelled, VolumeError, type VolumeMetadataError } from "../domain/errors.js"
import type { BackupRecord } from "../domain/record.js"
import { BackupCatalog } from "../catalog/BackupCatalog.js"
import type { ObjectNotFound, StoreFailure } from "../store/errors.js"
import { ObjectStore } from "../store/ObjectStore.js"
import type { Range } from "./extents.js"
import { checkLayout, misalignedRange, placeChain, volumeSizeOf } from "./layout.js"
import { claim, holdLease, type LeaseOptions } from "./lease.js"
import { checkObjectList, locate, readMetadata, readSha256File, sha256Name } from "./objects.js"
import { makeProgress, type ProgressOptions } from "./progress.js"
import { fileTarget, targetStream, type OpenTarget, type VolumeTarget } from "./volumeTarget.js"
import { GROUP_BYTES, GROUP_OBJECTS, groupPlacements, largestObject, largestSegment, objectBytes, orderedGroups, orderedSlotCount, segments } from "./jobGroups.js"
import { checkVolumeMeta, VolumeMetadata } from "./VolumeMetadata.js"

/** Settings of a restore: sparse target, concurrency, sha256 checks, progress and lease. */
export interface RestoreOptions extends ProgressOptions, LeaseOptions {
  /** The target is a new, zeroed volume: keep it sparse (a missing target file is always new). */
  readonly volumeIsNew?: boolean
  /** objects fetched and decompressed at once; default: the store's hint */
  readonly concurrency?: number
  /** the volume whose metadata receives volume_meta; default: the backup's */
  readonly volumeId?: string
  /**
   * Check every restored sha block against the backup's sha256 list before
   * it is written (default true): what md5s cannot catch — an object forged
   * with its md5, moved to another offset, or dropped from an incremental —
   * is caught too. False checks md5s only, as Cinder does.
   */
  readonly verifySha256?: boolean
}

/** The chain from the full backup to `record`, oldest first. */
export const backupChain = (record: BackupRecord) =>
  Effect.gen(function* () {
    const catalog = yield* BackupCatalog
    const chain = [record]
    const seen = new Set([record.id])
    let current = record
    while (current.parent_id !== null) {
      const parentId = current.parent_id
      if (seen.has(parentId)) {
        return yield* new InvalidBackup({ backupId: record.id, reason: `the parent chain has a cycle at backup ${parentId}` })
      }
      current = yield* catalog.get(parentId).pipe(
        Effect.catchTag("BackupNotFound", () =>
          Effect.fail(new InvalidBackup({ backupId: current.id, reason: `parent backup ${parentId} does not exist` }))
        )
      )
      seen.add(current.id)
      chain.push(current)
    }
    return chain.reverse()
  })

/** The error for an object whose decompressed length or md5 is not what its backup's metadata says. */
export const integrityError = (backupId: string, object: DataObject, actual: { readonly md5: string; readonly length: number }) =>
  new IntegrityError({
    backupId,
    object: object.name,
    expected: `${object.md5} (${object.length} bytes)`,
    actual: `${actual.md5} (${actual.length} bytes)`
  })

const checkIntegrity = (backupId: string, object: DataObject, actual: { readonly md5: string; readonly length: number }) =>
  actual.length === object.length && actual.md5 === object.md5 ? Effect.void : Effect.fail(integrityError(backupId, object, actual))

/**
 * Fetches, decompresses and verifies one object into `slot` (at least as long
 * as the object); the bytes returned, a view of the slot, are the volume's.
 */
export const fetchObject = (
  record: BackupRecord,
  metadata: BackupMetadata,
  object: DataObject,
  slot: Uint8Array
) =>
  Effect.gen(function* () {
    const store = yield* ObjectStore
    const { container } = yield* locate(record)
    if (object.length > slot.length) return yield* Effect.dieMessage(`a ${slot.length}-byte slot for the ${object.length} bytes of ${object.name}`)
    const stored = yield* store.get(container, object.name, metadata.extra_metadata)
    const { bytes: data, md5 } = yield* openObject(object.compression, stored, object.length, object.name, slot)
    yield* checkIntegrity(record.id, object, { md5, length: data.length })
    return data
  })

/** An object of the chain with the ranges of the volume it alone covers. */
interface Placement {
  readonly plan: { readonly record: BackupRecord; readonly metadata: BackupMetadata }
  readonly object: DataObject
  readonly visible: ReadonlyArray<{ readonly start: number; readonly end: number }>
}

/**
 * How a codec worker gets an object: its file, for a store of local files
 * (unless `readThroughStore`), else its bytes from the store; and the
 * algorithm to decompress it with.
 */
export const jobSource = (
  store: ObjectStore,
  plan: { readonly record: BackupRecord; readonly metadata: BackupMetadata },
  object: DataObject,
  readThroughStore = false
) =>
  Effect.gen(function* () {
    const { algorithm } = yield* recordedAlgorithm(object.compression, object.name)
    const { container } = yield* locate(plan.record)
    const path = readThroughStore ? undefined : store.localPath?.(container, object.name)
    const source = path !== undefined ? { path } : { bytes: yield* store.get(container, object.name, plan.metadata.extra_metadata) }
    return { algorithm, source }
  })

/** Checked bytes of a restore, to be written at `position` of the volume: a view of a slot. */
export interface Piece {
  readonly position: number
  readonly bytes: Uint8Array
}

/**
 * Restores a group of objects through one codec worker job: each is read
 * (by the worker itself, for a store of local files), decompressed into its
 * place in `slot` (from `base` on), checked for length, md5 and sha256s,
 * and only then its visible ranges are written at their offsets: by the
 * worker, to a target with a file descriptor; else returned as pieces, in
 * the group's order, for the caller to write.
 */
const restoreGroup = (
  group: ReadonlyArray<Placement>,
  slot: Uint8Array,
  target: VolumeTarget,
  shaCheck: ShaCheck | undefined,
  readThroughStore = false,
  base = 0
): Effect.Effect<ReadonlyArray<Piece>, RestoreGroupError, ObjectStore | CodecPool> =>
  Effect.gen(function* () {
    const store = yield* ObjectStore
    // Each object's place in the slot, then their sources: a remote store's objects fetched a few at once.
    const places: Array<number> = []
    let next = base
    for (const { object } of group) {
      places.push(next)
      next += object.length
    }
    if (next > slot.length) return yield* Effect.dieMessage(`a ${slot.length}-byte slot for ${next} bytes of objects`)
    const jobs = yield* Effect.forEach(
      group,
      ({ plan, object, visible }, i) =>
        Effect.gen(function* () {
          const { algorithm, source } = yield* jobSource(store, plan, object, readThroughStore)
          const ranges = visible.map((range) => [range.start - object.offset, range.end - object.offset, range.start] as const)
          const sha256 = shaCheck === undefined ? {} : { sha256: digestsFor(shaCheck, ranges) }
          return { algorithm, source, at: places[i]!, expectedLength: object.length, expectedMd5: object.md5, ranges, ...sha256 } satisfies RestoreObjectJob
        }),
      { concurrency: store.defaults.concurrency }
    )
    const outcomes = yield* restoreInWorker({
      objects: jobs,
      into: slot,
      ...(target.fd === undefined ? {} : { fd: target.fd }),
      sparse: target.zeroed
    })
    const pieces: Array<Piece> = []
    for (const [i, outcome] of outcomes.entries()) {
      const { plan, object } = group[i]!
      if (outcome._tag === "Failed") {
        // The worker could not read the file: the store's own read names the problem (ObjectNotFound, ...).
        if (outcome.stage === "read") {
          const rest = yield* restoreGroup(group.slice(i), slot, target, shaCheck, true, places[i])
          return [...pieces, ...rest]
        }
        return yield* outcome.stage === "write"
          ? new VolumeError({ path: target.name, reason: `write failed: ${outcome.reason}`, ...(outcome.code === undefined ? {} : { code: outcome.code }) })
          : decompressionFailed(object.compression ?? "none", outcome.reason, object.name)
      }
      if (outcome._tag === "ShaMismatch") {
        const block = outcome.block
        return yield* new IntegrityError({
          backupId: plan.record.id,
          object: object.name,
          digest: "sha256",
          expected: `${outcome.expected} for sha block ${block} (offset ${block * shaCheck!.blockSize}), as the sha256 file lists`,
          actual: outcome.actual
        })
      }
      yield* checkIntegrity(plan.record.id, object, outcome)
      if (target.fd === undefined) {
        for (const [start, end, position] of jobs[i]!.ranges) pieces.push({ position, bytes: slot.subarray(places[i]! + start, places[i]! + end) })
      }
    }
    return pieces
  })

/** Writes a group's pieces in volume order. */
const writePieces = (target: VolumeTarget, pieces: ReadonlyArray<Piece>) =>
  Effect.forEach(
    [...pieces].sort((a, b) => a.position - b.position),
    (piece) => target.write(piece.position, piece.bytes),
    { discard: true }
  )

type RestoreGroupError = CompressionError | IntegrityError | VolumeError | InvalidBackup | StoreFailure | ObjectNotFound

/** A backup of the chain: its record, its checked documents and its objects. */
export interface BackupPlan {
  readonly record: BackupRecord
  readonly metadata: BackupMetadata
  readonly objects: ReadonlyArray<DataObject>
}

/** Reads and checks one backup's documents: Cinder's object list check, then the ranges against its volume. */
export const readPlan = (record: BackupRecord): Effect.Effect<BackupPlan, RestorePlanError, ObjectStore> =>
  Effect.gen(function* () {
    const metadata = yield* readMetadata(record)
    yield* checkObjectList(record, metadata)
    // Like Cinder, null and "" both mean "no volume metadata".
    if (metadata.volume_meta) yield* checkVolumeMeta(record.id, metadata.volume_meta)
    const objects = dataObjects(metadata)
    yield* checkLayout(record, objects)
    return { record, metadata, objects }
  })

type RestorePlanError = Effect.Effect.Error<ReturnType<typeof readMetadata>> | Effect.Effect.Error<ReturnType<typeof checkObjectList>> | VolumeMetadataError

/** The sha256 list of the requested backup as bytes, after checking that it can check this restore block by block. */
const expectedDigests = (record: BackupRecord, placed: ReadonlyArray<{ readonly object: DataObject; readonly visible: ReadonlyArray<Range> }>, size: number) =>
  Effect.gen(function* () {
    const shaFile = yield* readSha256File(record)
    const blockSize = shaFile.chunk_size
    const blocks = Math.ceil(size / blockSize)
    const invalid = (reason: string) => new InvalidBackup({ backupId: record.id, object: sha256Name(record.service_metadata ?? ""), reason })
    if (shaFile.count !== blocks) {
      return yield* invalid(`the sha256 file lists ${shaFile.count} blocks of ${blockSize} bytes; the ${size}-byte volume has ${blocks}`)
    }
    const misaligned = misalignedRange(placed, blockSize, size)
    if (misaligned !== undefined) {
      return yield* new InvalidBackup({
        backupId: record.id,
        object: misaligned.object.name,
        reason: `its bytes do not start and end on ${blockSize}-byte sha blocks, so the sha256 list cannot check them`
      })
    }
    return { blockSize, digests: shaFile.digests }
  })

type ShaCheck = Effect.Effect.Success<ReturnType<typeof expectedDigests>>

/** The expected digests of the blocks `ranges` write, in order (ranges start on block boundaries). */
const digestsFor = (check: ShaCheck, ranges: ReadonlyArray<readonly [number, number, number]>) => {
  const parts = ranges.map(([start, end, position]) => {
    const first = position / check.blockSize
    const count = Math.ceil((end - start) / check.blockSize)
    return check.digests.subarray(first * DIGEST_BYTES, (first + count) * DIGEST_BYTES)
  })
  return { blockSize: check.blockSize, expected: new Uint8Array(Buffer.concat(parts)) }
}

const restoreChain = <R>(requested: BackupRecord, openTarget: OpenTarget<R>, options: RestoreOptions) =>
  Effect.gen(function* () {
    const store = yield* ObjectStore
    const chain = yield* backupChain(requested)
    // Read and check every document before touching the target.
    // Several backups at once: a long chain's documents and listings are read in parallel, not one by one.
    const plans = yield* Effect.forEach(chain, readPlan, { concurrency: 8 })
    // The volume is the requested backup's size, from the record, not the documents.
    const volumeSize = yield* volumeSizeOf(requested)
    // Each byte comes from the newest object that covers it, fetched once.
    const layers = plans.map((plan) => plan.objects.map((object) => ({ ...object, plan })))
    const placed = yield* placeChain(requested.id, layers, volumeSize)
    const shaCheck = options.verifySha256 !== false ? yield* expectedDigests(requested, placed, volumeSize) : undefined
    const progress = yield* makeProgress("restore", requested.id, volumeSize, options)
    const target = yield* openTarget(volumeSize)
    const concurrency = Math.max(1, options.concurrency ?? store.defaults.concurrency)
    const placements = placed.map(({ object, visible }): Placement => ({ plan: object.plan, object, visible }))
    // An object holds a slot from its fetch until it is written: memory stays
    // at `concurrency` objects (plus their compressed bytes) whatever the volume.
    // Small objects share a job (one worker round trip and side-by-side md5s
    // for up to 64 of them); a slot then holds at least a few MiB of them.
    const slotSize = Math.max(largestObject(placements.map((p) => p.object)), GROUP_BYTES)
    const visibleBytes = (group: ReadonlyArray<Placement>) => group.reduce((sum, p) => sum + p.visible.reduce((s, r) => s + r.end - r.start, 0), 0)
    if (target.ordered) {
      // Jobs in volume order, each of whole segments; a job's slot is taken
      // in that order (so the next job to write always has one) and handed
      // back once its pieces are written.
      const joined = segments(placements)
      const orderedSlot = Math.max(largestSegment(joined), GROUP_BYTES)
      const slots = yield* makeSlotPool(orderedSlot, orderedSlotCount(concurrency, orderedSlot, slotSize * concurrency))
      yield* Stream.fromIterable(orderedGroups(joined, slots.size, GROUP_OBJECTS)).pipe(
        Stream.mapEffect((group) => Effect.map(slots.take, (slot) => ({ group, slot }))),
        Stream.mapEffect(({ group, slot }) => restoreGroup(group, slot, target, shaCheck).pipe(
          Effect.map((pieces) => ({ group, slot, pieces })),
          Effect.tapError(() => slots.give(slot))
        ), { concurrency }),
        Stream.runForEach(({ group, slot, pieces }) =>
          writePieces(target, pieces).pipe(Effect.ensuring(slots.give(slot)), Effect.zipRight(progress.advance(visibleBytes(group), group.length)))
        )
      )
    } else {
      const slots = yield* makeSlotPool(slotSize, concurrency)
      // The visible ranges of different objects never overlap, so objects are
      // written in any order, by positional writes. One flush at the end makes
      // it durable (Cinder fsyncs per object; on a chain of many small objects
      // that serialised the restore).
      // Biggest jobs first (the writes need no order): the small ones then fill
      // the workers' gaps at the end instead of one big object running alone.
      const groups = groupPlacements(placements, slots.size, GROUP_OBJECTS).sort((a, b) => objectBytes(b) - objectBytes(a))
      // Effect.forEach, not a Stream's concurrent mapEffect, which cost about a millisecond per group.
      yield* Effect.forEach(
        groups,
        (group) =>
          Effect.acquireUseRelease(slots.take, (slot) => Effect.flatMap(restoreGroup(group, slot, target, shaCheck), (pieces) => writePieces(target, pieces)), slots.give).pipe(
            Effect.zipRight(progress.advance(visibleBytes(group), group.length))
          ),
        { concurrency, discard: true }
      )
    }
    yield* target.flush
    // Cinder hands each backup's volume metadata over in chain order.
    const metadataApi = yield* Effect.serviceOption(VolumeMetadata)
    for (const plan of plans) {
      if (plan.metadata.volume_meta && Option.isSome(metadataApi)) {
        yield* metadataApi.value.put(options.volumeId ?? requested.volume_id, plan.metadata.volume_meta)
      }
    }
    yield* progress.finish
    return { backupId: requested.id, bytes: volumeSize, backups: chain.length, sha256Checked: shaCheck !== undefined }
  }).pipe(Effect.scoped)

/**
 * Restores backup `backupId` (and its chain) into `target`: a path (a file,
 * created when missing, or a block device; see `fileTarget`), or any
 * VolumeTarget, opened once every document is checked.
 */
export const restore = <T extends string | OpenTarget<any>>(backupId: string, target: T, options: RestoreOptions = {}) =>
  Effect.gen(function* () {
    const catalog = yield* BackupCatalog
    const record = yield* catalog.get(backupId)
    const claimed = yield* claim(backupId, ["available"], "restoring", options)
    if (!claimed) {
      return yield* new InvalidRequest({ reason: `backup ${backupId} is ${record.status}; only an available backup can be restored` })
    }
    const cancelled = catalog.watch(backupId).pipe(
      Stream.filter((status) => status !== "restoring"),
      Stream.runHead,
      Effect.flatMap(
        Option.match({
          onNone: () => Effect.fail(new RestoreCancelled({ backupId, status: "deleted" })),
          onSome: (status) => Effect.fail(new RestoreCancelled({ backupId, status }))
        })
      )
    )
    // The watcher cannot stop a restore that is never suspended (writes to a full pipe are
    // synchronous in Node): a status changed meanwhile is found here, at the end, as a cancel.
    const stillRestoring = Effect.flatMap(catalog.get(backupId), (now) =>
      now.status === "restoring" ? Effect.void : Effect.fail(new RestoreCancelled({ backupId, status: now.status }))
    )
    const work = Effect.zipRight(holdLease(backupId, options), restoreChain<TargetRequirements<T> | FileSystem.FileSystem>(
      record,
      typeof target === "string" ? fileTarget(target, { fresh: options.volumeIsNew ?? false }) : (target as OpenTarget<TargetRequirements<T>>),
      options
    )).pipe(Effect.tap(() => stillRestoring))
    return yield* Effect.raceFirst(Effect.scoped(work), cancelled).pipe(
      Effect.ensuring(catalog.transition(backupId, ["restoring"], "available").pipe(Effect.ignoreLogged))
    )
  }).pipe(Effect.withSpan("chunked-backup.restore", { attributes: { backupId } }))

/** What opening a restore's target needs: nothing beyond the FileSystem for a path. */
export type TargetRequirements<T> = T extends OpenTarget<infer R> ? R : never

/** The services a restore to a path needs. */
export type RestoreRequirements = ObjectStore | BackupCatalog | FileSystem.FileSystem | CodecPool

/**
 * The restored volume as a Stream of its bytes, in order (the chain is
 * checked as for `restore`, then each object's bytes are checked before they
 * are emitted). The backup is `restoring` while the stream runs; a consumer
 * that stops early ends the restore.
 */
export const restoreStream = (backupId: string, options: Omit<RestoreOptions, "volumeIsNew"> = {}) =>
  targetStream("stream", (target) => restore(backupId, target, options))

/** What a restore resolves with: the backup, the volume's size, the chain's length and whether every sha256 block was checked. */
export type RestoreResult = Effect.Effect.Success<ReturnType<typeof restore<string>>>

/** Every error a restore can end with: refused requests, damaged or hostile documents, integrity, store, volume and catalog failures, cancellation. */
export type RestoreError = Effect.Effect.Error<ReturnType<typeof restore<string>>>
