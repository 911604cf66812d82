/**
 * Copy: a backup and every ancestor the destination does not have yet, from
 * the source (ObjectStore, BackupCatalog) to the destination
 * (CopyDestination), object for object: the same object names under the
 * destination store's container, the same stored bytes, the documents
 * unchanged. Each backup's documents are read and checked first, the whole
 * chain before anything is written; each object is decompressed and
 * md5-checked on the way, so a corrupt source object stops the copy
 * (IntegrityError naming it) before its bytes reach the destination.
 *
 * Each copied backup's destination record goes creating → available, under a
 * lease like a backup's; the sha256 file and then the metadata are written
 * after every data object, and only then is the record made available, so an
 * interrupted copy never shows as available there. A failed copy leaves the
 * record `error` with its objects in place: copying again resumes it. A
 * record cancelled at the destination (turned `deleting`) stops the copy,
 * and what it sent is deleted, as for a cancelled backup.
 */
import { Duration, Effect, Either, Exit, Fiber, Option, Stream } from "effect"
import { BackupCatalog } from "../catalog/BackupCatalog.js"
import { recordedAlgorithm } from "../codec/codec.js"
import type { CodecPool } from "../codec/pool.js"
import { decompressInWorker } from "../codec/poolJobs.js"
import { makeSlotPool, type SlotPool } from "../codec/slots.js"
import { dataObjects, type DataObject } from "../domain/documents.js"
import { BackupCancelled, IntegrityError, InvalidRequest } from "../domain/errors.js"
import type { BackupRecord } from "../domain/record.js"
import { decodeSha256File } from "../format/documents.js"
import { ObjectStore } from "../store/ObjectStore.js"
import { failureReason } from "./cleanup.js"
import { finishDelete } from "./delete.js"
import { atDestination, CopyDestination } from "./copyDestination.js"
import { largestObject } from "./jobGroups.js"
import { checkLayout } from "./layout.js"
import { claim, defaultLease, holdLease, leaseLive, type LeaseOptions } from "./lease.js"
import { decodeRecordMetadata, locate, metadataName, ownObjects, readDocument, sha256Name } from "./objects.js"
import { makeProgress, type ProgressOptions } from "./progress.js"
import { backupChain, integrityError } from "./restore.js"

/** Settings of a copy: objects in flight, progress and lease. */
export interface CopyOptions extends ProgressOptions, LeaseOptions {
  /** objects fetched, checked and written at once; default: the source store's hint */
  readonly concurrency?: number
}

/** What a copy did with one backup of the chain. */
export interface CopiedBackup {
  readonly backupId: string
  /** `present`: already available at the destination, nothing was sent */
  readonly outcome: "copied" | "present"
  /** data objects written to the destination */
  readonly objectsCopied: number
  /** data objects already at the destination with the right content (a resumed copy), not sent again */
  readonly objectsSkipped: number
  /** stored (compressed) bytes of the data objects written */
  readonly bytesCopied: number
}

/** What a copy did: every backup of the requested backup's chain, oldest first, and the totals. */
export interface CopyReport {
  readonly backupId: string
  readonly backups: ReadonlyArray<CopiedBackup>
  readonly objectsCopied: number
  readonly objectsSkipped: number
  readonly bytesCopied: number
}

/** A source backup, read and checked: its record, its data objects and its two documents' bytes. */
interface SourcePlan {
  readonly record: BackupRecord
  readonly container: string
  readonly prefix: string
  readonly extra: unknown
  readonly objects: ReadonlyArray<DataObject>
  readonly sha256File: Uint8Array
  readonly metadata: Uint8Array
}

/** Reads and checks a source backup's documents; the stored bytes are what the destination gets. */
const sourcePlan = (record: BackupRecord) =>
  Effect.gen(function* () {
    if (!isThere(record)) {
      return yield* new InvalidRequest({ reason: `backup ${record.id} is ${record.status} at the source; only available backups can be copied` })
    }
    const { container, prefix } = yield* locate(record)
    const metadataDocument = yield* readDocument(record, metadataName)
    const metadata = yield* decodeRecordMetadata(record, metadataDocument.object, metadataDocument.bytes)
    const shaDocument = yield* readDocument(record, sha256Name)
    // A sha256 file that does not decode would make a destination backup no incremental can be based on.
    yield* decodeSha256File(record.id, shaDocument.object, shaDocument.bytes)
    const objects = dataObjects(metadata)
    // Documents are untrusted: lengths bound the slots below.
    yield* checkLayout(record, objects)
    const plan: SourcePlan = { record, container, prefix, extra: metadata.extra_metadata, objects, sha256File: shaDocument.bytes, metadata: metadataDocument.bytes }
    return plan
  })

/**
 * Decompresses `stored` into `slot` in a codec worker and checks its length
 * and md5 against the metadata's. Bytes that do not decompress are corrupt
 * too: an IntegrityError, like a wrong md5. The worker gets a copy (a
 * whole buffer is handed over, and a store's Buffer `slice` is no copy):
 * `stored` itself is what gets written.
 */
const checkObject = (backupId: string, object: DataObject, stored: Uint8Array, slot: Uint8Array) =>
  Effect.gen(function* () {
    const { algorithm } = yield* recordedAlgorithm(object.compression, object.name)
    const opened = yield* Effect.either(decompressInWorker(algorithm, new Uint8Array(stored), object.length, slot))
    if (Either.isLeft(opened)) {
      return yield* new IntegrityError({
        backupId,
        object: object.name,
        expected: `${object.md5} (${object.length} bytes)`,
        actual: `none: the bytes do not decompress as ${object.compression ?? "none"} (${opened.left})`
      })
    }
    const { bytes, md5 } = opened.right
    if (bytes.length !== object.length || md5 !== object.md5) return yield* integrityError(backupId, object, { md5, length: bytes.length })
  })

/** Available, or being restored (which leaves it available): a backup that is there. */
const isThere = (record: BackupRecord) => record.status === "available" || record.status === "restoring"

const sameBackup = (a: BackupRecord, b: BackupRecord) =>
  a.volume_id === b.volume_id && a.parent_id === b.parent_id && a.service_metadata === b.service_metadata && a.volume_size_bytes === b.volume_size_bytes

/**
 * The destination's record for `source`: made (creating, leased) when
 * missing; taken over when a copy of it failed or died (creating or error,
 * no live lease); "present" when it is available there already. A
 * different backup under the same id is refused.
 */
const destinationRecord = (source: BackupRecord, options: LeaseOptions) =>
  atDestination(
    Effect.gen(function* () {
      const store = yield* ObjectStore
      const catalog = yield* BackupCatalog
      const existing = yield* catalog.get(source.id).pipe(Effect.catchTag("BackupNotFound", () => Effect.succeed(undefined)))
      if (existing === undefined) {
        const container = store.containerFor({ ...source, container: null })
        const lease = new Date(Date.now() + Duration.toMillis(options.leaseDuration ?? defaultLease))
        yield* catalog.create({ ...source, container, service: store.defaults.service, status: "creating", fail_reason: null, updated_at: null, lease_expires_at: lease })
        return { present: false, container } as const
      }
      if (!sameBackup(existing, source)) {
        return yield* new InvalidRequest({
          reason: `the destination holds a different backup under id ${source.id} (volume ${existing.volume_id}, objects ${existing.service_metadata ?? "none"}; the source's: volume ${source.volume_id}, objects ${source.service_metadata}); nothing was copied`
        })
      }
      if (isThere(existing)) return { present: true, container: existing.container! } as const
      if (existing.status !== "creating" && existing.status !== "error") {
        return yield* new InvalidRequest({ reason: `backup ${source.id} is ${existing.status} at the destination; delete it or run cleanup there before copying it again` })
      }
      if (!(yield* claim(source.id, ["creating", "error"], "creating", options))) {
        return yield* new InvalidRequest({ reason: `backup ${source.id} is ${existing.status} at the destination under another process's lease (a copy running?); try again when it ends or its lease runs out` })
      }
      return { present: false, container: existing.container ?? store.containerFor({ ...source, container: null }) } as const
    })
  )

/** Whether the destination has `source` available already (then nothing of it is sent). */
const presentAtDestination = (source: BackupRecord) =>
  atDestination(
    Effect.flatMap(BackupCatalog, (catalog) => catalog.get(source.id)).pipe(
      Effect.map((existing) => sameBackup(existing, source) && isThere(existing)),
      Effect.catchTag("BackupNotFound", () => Effect.succeed(false))
    )
  )

type Progress = Effect.Effect.Success<ReturnType<typeof makeProgress>>

/** The destination's copy of `object` is there and decompresses to the recorded md5: it need not be sent again. */
const intactAtDestination = (plan: SourcePlan, container: string, object: DataObject, slot: Uint8Array) =>
  Effect.gen(function* () {
    const { store } = yield* CopyDestination
    const stored = yield* store.get(container, object.name, plan.extra).pipe(Effect.catchTag("ObjectNotFound", () => Effect.succeed(undefined)))
    if (stored === undefined) return false
    return Either.isRight(yield* Effect.either(checkObject(plan.record.id, object, stored, slot)))
  })

/**
 * Sends one backup's data objects, `concurrency` at once, then its sha256
 * file and metadata. Resuming: an object the destination lists is read back
 * there and md5-checked after decompression (the check restore makes), and
 * not sent again when it passes; reading it costs what sending would save
 * on a link, and nothing weaker than the restore's own check counts.
 */
const sendBackup = (plan: SourcePlan, container: string, slots: SlotPool, progress: Progress, concurrency: number) =>
  Effect.gen(function* () {
    const source = yield* ObjectStore
    const { store } = yield* CopyDestination
    yield* store.ensureContainer(container)
    const listed = new Set(ownObjects(plan.prefix, yield* store.list(container, plan.prefix)))
    let objectsCopied = 0
    let objectsSkipped = 0
    let bytesCopied = 0
    const send = (object: DataObject, slot: Uint8Array) =>
      Effect.gen(function* () {
        if (listed.has(object.name) && (yield* intactAtDestination(plan, container, object, slot))) {
          objectsSkipped++
          return
        }
        const stored = yield* source.get(plan.container, object.name, plan.extra)
        yield* checkObject(plan.record.id, object, stored, slot)
        yield* store.put(container, object.name, stored, plan.extra)
        objectsCopied++
        bytesCopied += stored.length
      })
    yield* Effect.forEach(
      plan.objects,
      (object) => Effect.acquireUseRelease(slots.take, (slot) => send(object, slot), slots.give).pipe(Effect.zipRight(progress.advance(object.length, 1))),
      { concurrency, discard: true }
    )
    // The metadata goes last: its presence marks a complete backup. Documents already there byte for byte stay.
    for (const [name, bytes] of [[sha256Name(plan.prefix), plan.sha256File], [metadataName(plan.prefix), plan.metadata]] as const) {
      const there = listed.has(name) ? yield* store.get(container, name, plan.extra).pipe(Effect.catchTag("ObjectNotFound", () => Effect.succeed(undefined))) : undefined
      if (there === undefined || !Buffer.from(there).equals(Buffer.from(bytes))) yield* store.put(container, name, bytes, plan.extra)
    }
    return { objectsCopied, objectsSkipped, bytesCopied }
  })

/** The destination record leaving `creating` (`cancel` there turns it `deleting`) stops the copy of it. */
const cancelledAt = (backupId: string) =>
  atDestination(
    Effect.flatMap(BackupCatalog, (catalog) =>
      catalog.watch(backupId).pipe(
        Stream.filter((status) => status !== "creating" && status !== "available"),
        Stream.runHead
      )
    )
  ).pipe(Effect.flatMap(Option.match({ onNone: () => Effect.never, onSome: () => Effect.fail(new BackupCancelled({ backupId })) })))

/**
 * After a failed or interrupted copy, once its lease is released: a record
 * cancelled at the destination is deleted there, objects and all, as a
 * cancelled backup is; any other ends `error`, its objects kept for the
 * next copy to resume from.
 */
const afterFailure = (backupId: string, reason: string, options: LeaseOptions) =>
  atDestination(
    Effect.gen(function* () {
      const catalog = yield* BackupCatalog
      const record = yield* catalog.get(backupId)
      if (record.status === "deleting" || record.status === "deleted") {
        if (yield* claim(backupId, ["deleting", "deleted"], "deleting", options)) yield* finishDelete(backupId, options)
        return
      }
      yield* catalog.update(backupId, (r) =>
        r.status === "creating" && !leaseLive(r, new Date())
          ? { ...r, status: "error", fail_reason: `copy failed: ${reason}; copy it again to resume`, lease_expires_at: null }
          : r
      )
    })
  ).pipe(Effect.ignoreLogged, Effect.uninterruptible)

/** Copies one backup whose parent the destination has: its record, objects and documents, then `available`. */
const copyBackup = (plan: SourcePlan, slots: SlotPool, progress: Progress, concurrency: number, options: LeaseOptions) =>
  Effect.gen(function* () {
    const backupId = plan.record.id
    const destination = yield* destinationRecord(plan.record, options)
    if (destination.present) {
      const present: CopiedBackup = { backupId, outcome: "present", objectsCopied: 0, objectsSkipped: 0, bytesCopied: 0 }
      return present
    }
    const body = Effect.gen(function* () {
      const counts = yield* sendBackup(plan, destination.container, slots, progress, concurrency)
      // Compare-and-set: a record someone else claimed meanwhile is not made available.
      const done = yield* atDestination(
        Effect.flatMap(BackupCatalog, (catalog) =>
          catalog.update(backupId, (r) => (r.status === "creating" ? { ...r, status: "available", lease_expires_at: null, fail_reason: null, updated_at: new Date() } : r))
        )
      )
      if (done.status !== "available") return yield* new BackupCancelled({ backupId })
      const copied: CopiedBackup = { backupId, outcome: "copied", ...counts }
      return copied
    })
    const work = Effect.gen(function* () {
      yield* atDestination(holdLease(backupId, options))
      // As a backup: the body in its own fiber, awaited before the clean-up, so no write lands after it lists the objects.
      const running = yield* Effect.fork(body)
      return yield* Effect.raceFirst(Fiber.join(running), cancelledAt(backupId)).pipe(Effect.onExit(() => Fiber.interrupt(running)))
    }).pipe(Effect.scoped)
    // The lease is released when `work`'s scope closes; only then can the record be settled.
    return yield* work.pipe(Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : afterFailure(backupId, failureReason(exit.cause), options))))
  })

/**
 * Copies backup `backupId` and every ancestor the destination does not have
 * from the source (ObjectStore, BackupCatalog) to the CopyDestination,
 * oldest first. Each is a normal record there once copied: restore, verify,
 * export-record work on it. Resumable; a backup already available there is
 * left as it is ("present"), a different backup under the same id refused.
 */
export const copy = (backupId: string, options: CopyOptions = {}) =>
  Effect.gen(function* () {
    const requested = yield* (yield* BackupCatalog).get(backupId)
    const chain = yield* backupChain(requested)
    const plans = yield* Effect.forEach(chain, sourcePlan)
    const allObjects = plans.flatMap((plan) => plan.objects)
    const concurrency = Math.max(1, options.concurrency ?? (yield* ObjectStore).defaults.concurrency)
    const slots = yield* makeSlotPool(Math.max(1, largestObject(allObjects)), concurrency)
    // Progress counts what is to be copied: the backups the destination has are left out.
    const present = yield* Effect.forEach(plans, (plan) => presentAtDestination(plan.record))
    const toCopy = plans.filter((_, i) => !present[i]).flatMap((plan) => plan.objects)
    const progress = yield* makeProgress("copy", backupId, toCopy.reduce((sum, o) => sum + o.length, 0), options)
    const backups: Array<CopiedBackup> = []
    // One at a time, oldest first: a backup is made available only after its parent is.
    for (const plan of plans) backups.push(yield* copyBackup(plan, slots, progress, concurrency, options))
    yield* progress.finish
    const total = (field: "objectsCopied" | "objectsSkipped" | "bytesCopied") => backups.reduce((sum, b) => sum + b[field], 0)
    const report: CopyReport = { backupId, backups, objectsCopied: total("objectsCopied"), objectsSkipped: total("objectsSkipped"), bytesCopied: total("bytesCopied") }
    return report
  }).pipe(Effect.scoped, Effect.withSpan("chunked-backup.copy", { attributes: { backupId } }))

/** The services a copy needs: the source's store and catalog, the destination, the codec pool. */
export type CopyRequirements = ObjectStore | BackupCatalog | CopyDestination | CodecPool

/** Every error a copy can end with: refused requests, source documents, corrupt objects, store and catalog failures. */
export type CopyError = Effect.Effect.Error<ReturnType<typeof copy>>
