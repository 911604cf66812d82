/**
 * Restore: Cinder's ChunkedBackupDriver.restore, flattened. Every backup of
 * the chain has its documents read and its object list checked first; then
 * each byte of the volume is taken from the newest object covering it, so an
 * object is fetched at most once and shadowed objects not at all. Fetched
 * objects are decompressed and length- and md5-verified as a whole, their
 * visible ranges written; the target is fsynced once at the end. A fresh target stays sparse: all-zero
 * MiB parts are not written (safe, as every byte is written only once).
 *
 * The requested backup is `restoring` for the duration; when its status
 * changes, the restore is interrupted and fails with RestoreCancelled.
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import { Effect, Option, Stream } from "effect"
import { openObject } from "../codec/codec.js"
import { startWorkers } from "../codec/pool.js"
import { makeSlotPool } from "../codec/slots.js"
import { dataObjects, type BackupMetadata } from "../domain/documents.js"
import { IntegrityError, InvalidBackup, InvalidRequest, RestoreCancelled, type VolumeError } from "../domain/errors.js"
import type { BackupRecord } from "../domain/record.js"
import { BackupCatalog } from "../catalog/BackupCatalog.js"
import { ObjectStore } from "../store/ObjectStore.js"
import { flatten } from "./extents.js"
import { claim, holdLease, type LeaseOptions } from "./lease.js"
import { checkObjectList, locate, readMetadata } from "./objects.js"
import { makeProgress, type ProgressOptions } from "./progress.js"
import { openTarget, type VolumeWriter } from "./volume.js"
import { checkVolumeMeta, VolumeMetadata } from "./VolumeMetadata.js"

export interface RestoreOptions extends ProgressOptions, LeaseOptions {
  /** The target is a new, zeroed volume: keep it sparse (a missing target file is always new). */
  readonly volumeIsNew?: boolean
  /** objects fetched and decompressed at once; default: the store's hint */
  readonly concurrency?: number
  /** the volume whose metadata receives volume_meta; default: the backup's */
  readonly volumeId?: string
}

const SPARSE_PART = 1024 * 1024
const ZEROS = new Uint8Array(SPARSE_PART)

/** memcmp against zeros: a byte-by-byte JS loop costs seconds per GiB. */
const isZero = (part: Uint8Array) => Buffer.compare(part, ZEROS.subarray(0, part.length)) === 0

/**
 * Writes `data` at `offset`, skipping whole-zero parts when the target is
 * sparse; consecutive parts with data go out as one write.
 */
const writeData = (writer: VolumeWriter, offset: number, data: Uint8Array, sparse: boolean) => {
  if (!sparse) return writer.write(offset, data)
  const writes: Array<Effect.Effect<void, VolumeError>> = []
  let run = -1 // start of the current run of parts with data
  for (let start = 0; start < data.length; start += SPARSE_PART) {
    const zero = isZero(data.subarray(start, Math.min(start + SPARSE_PART, data.length)))
    if (!zero && run === -1) run = start
    if (zero && run !== -1) {
      writes.push(writer.write(offset + run, data.subarray(run, start)))
      run = -1
    }
  }
  if (run !== -1) writes.push(writer.write(offset + run, data.subarray(run)))
  return Effect.all(writes, { discard: true })
}

/** The slot size a set of objects needs. */
export const largestObject = (objects: ReadonlyArray<{ readonly length: number }>) =>
  objects.reduce((max, o) => Math.max(max, o.length), 0)

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

/**
 * Fetches, decompresses and verifies one object into `slot` (at least as long
 * as the object); the bytes returned, a view of the slot, are the volume's.
 */
export const fetchObject = (
  record: BackupRecord,
  metadata: BackupMetadata,
  object: ReturnType<typeof dataObjects>[number],
  slot: Uint8Array
) =>
  Effect.gen(function* () {
    const store = yield* ObjectStore
    const { container } = yield* locate(record)
    if (object.length > slot.length) return yield* Effect.dieMessage(`a ${slot.length}-byte slot for the ${object.length} bytes of ${object.name}`)
    const stored = yield* store.get(container, object.name, metadata.extra_metadata)
    const { bytes: data, md5 } = yield* openObject(object.compression, stored, object.length, object.name, slot)
    if (data.length !== object.length || md5 !== object.md5) {
      return yield* new IntegrityError({
        backupId: record.id,
        object: object.name,
        expected: `${object.md5} (${object.length} bytes)`,
        actual: `${md5} (${data.length} bytes)`
      })
    }
    return data
  })

const restoreChain = (requested: BackupRecord, targetPath: string, options: RestoreOptions) =>
  Effect.gen(function* () {
    const store = yield* ObjectStore
    const chain = yield* backupChain(requested)
    // Read and check every document before touching the target.
    const plans = yield* Effect.forEach(chain, (record) =>
      Effect.gen(function* () {
        const metadata = yield* readMetadata(record)
        yield* checkObjectList(record, metadata)
        // Like Cinder, null and "" both mean "no volume metadata".
        if (metadata.volume_meta) yield* checkVolumeMeta(record.id, metadata.volume_meta)
        return { record, metadata, objects: dataObjects(metadata) }
      })
    )
    // A full backup's objects cover the whole volume.
    const volumeSize = Math.max(0, ...plans[0]!.objects.map((o) => o.offset + o.length))
    // Each byte comes from the newest object that covers it, fetched once.
    const placed = flatten(plans.map((plan) => plan.objects.map((object) => ({ ...object, plan }))))
    const totalBytes = placed.reduce((sum, p) => sum + p.visible.reduce((s, r) => s + r.end - r.start, 0), 0)
    const progress = yield* makeProgress("restore", requested.id, totalBytes, options)
    const { writer, sparse } = yield* openTarget(targetPath, volumeSize, options.volumeIsNew ?? false)
    const concurrency = Math.max(1, options.concurrency ?? store.defaults.concurrency)
    // An object holds a slot from its fetch until it is written: memory stays
    // at `concurrency` objects (plus their compressed bytes) whatever the volume.
    const slots = yield* makeSlotPool(largestObject(placed.map((p) => p.object)), concurrency)
    // Each object is fetched, checked and written by one of `concurrency`
    // fibers: the visible ranges of different objects never overlap, so the
    // positional writes need no order. One fsync at the end makes it durable
    // (Cinder fsyncs per object; on a chain of many small objects that
    // serialised the restore behind ~460 fsyncs).
    yield* Stream.fromIterable(placed).pipe(
      Stream.mapEffect(
        ({ object, visible }) =>
          Effect.gen(function* () {
            const slot = yield* slots.take
            const data = yield* fetchObject(object.plan.record, object.plan.metadata, object, slot)
            yield* Effect.forEach(visible, (range) => writeData(writer, range.start, data.subarray(range.start - object.offset, range.end - object.offset), sparse), {
              discard: true
            })
            yield* slots.give(slot)
            return visible.reduce((s, r) => s + r.end - r.start, 0)
          }),
        { concurrency, unordered: true }
      ),
      Stream.runForEach((bytes) => progress.advance(bytes))
    )
    yield* writer.sync
    // Cinder hands each backup's volume metadata over in chain order.
    const metadataApi = yield* Effect.serviceOption(VolumeMetadata)
    for (const plan of plans) {
      if (plan.metadata.volume_meta && Option.isSome(metadataApi)) {
        yield* metadataApi.value.put(options.volumeId ?? requested.volume_id, plan.metadata.volume_meta)
      }
    }
    yield* progress.finish
    return { backupId: requested.id, bytes: volumeSize, backups: chain.length }
  }).pipe(Effect.scoped)

/**
 * Restores backup `backupId` (and its chain) into `targetPath`, a file
 * (created when missing) or a block device.
 */
export const restore = (backupId: string, targetPath: string, options: RestoreOptions = {}) =>
  Effect.gen(function* () {
    yield* startWorkers
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
    const work = Effect.zipRight(holdLease(backupId, options), restoreChain(record, targetPath, options))
    return yield* Effect.raceFirst(Effect.scoped(work), cancelled).pipe(
      Effect.ensuring(catalog.transition(backupId, ["restoring"], "available").pipe(Effect.ignoreLogged))
    )
  }).pipe(Effect.withSpan("chunked-backup.restore", { attributes: { backupId } }))

export type RestoreRequirements = ObjectStore | BackupCatalog | FileSystem.FileSystem
