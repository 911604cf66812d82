/**
 * Cleanup: settles every record a killed or failed process can leave, until
 * no object in the store belongs to no usable backup.
 *
 * - `creating`, lease run out: an abandoned backup; its objects are deleted
 *   and it ends `error`.
 * - `deleting`, lease run out: an abandoned delete; finished, `deleted`.
 * - `restoring`, lease run out: handed back `available` (the store was only read).
 * - `error_deleting`, no live lease: objects still to delete. Either a failed
 *   backup whose objects could not be deleted (its fail_reason carries the
 *   pending-deletion mark, see `pendingDeletion`), which ends `error`, or a
 *   delete that failed or was abandoned (Cinder's error_deleting), which is
 *   deleted again and ends `deleted`.
 *
 * Each record is claimed with a lease (`claim`) and the lease held while its
 * objects go, so two cleanups never work on one record, a live process is
 * never overtaken, and a cleanup killed midway leaves a record whose lease
 * runs out and that the next cleanup resumes. A record whose objects cannot
 * be deleted (store down) stays `error_deleting` and is reported; the next
 * cleanup retries it.
 */
import { Cause, Effect, Option } from "effect"
import { BackupCatalog } from "../catalog/BackupCatalog.js"
import type { BackupNotFound, CatalogError } from "../domain/errors.js"
import type { BackupRecord, BackupStatus } from "../domain/record.js"
import type { StoreFailure } from "../store/errors.js"
import type { ObjectStore } from "../store/ObjectStore.js"
import { finishDelete } from "./delete.js"
import { claim, holdLease, leaseExpired, leaseLive, release, type HeldLease, type LeaseOptions } from "./lease.js"
import { deleteObjects } from "./objects.js"

/** What cleanup did to one record: the status it found, the status it left and the objects it deleted. */
export interface CleanupAction {
  readonly backupId: string
  readonly was: string
  /** the status it is left in */
  readonly now: string
  readonly objectsDeleted: number
  /** set when its objects could not all be deleted: the record waits for the next cleanup */
  readonly failure?: StoreFailure
}

/**
 * The mark in fail_reason of an `error_deleting` record that is a failed
 * backup (not a failed delete): the status says objects remain, the mark says
 * the record ends `error` once they are gone. Kept in fail_reason because a
 * delete overwrites it (a failed delete writes its own reason), so a record
 * someone asked to delete never keeps the mark.
 */
const PENDING = "; its objects are pending deletion"

/** How an operation ended, in one line for a record's fail_reason: the error's message, or "interrupted". */
export const failureReason = (cause: Cause.Cause<unknown>): string =>
  Option.match(Cause.failureOption(cause), {
    onNone: () => (Cause.isInterruptedOnly(cause) ? "interrupted" : Cause.pretty(cause)),
    onSome: (e) => (e instanceof Error ? e.message : String(e))
  })

/** The fail_reason of a failed backup whose objects are still to be deleted. */
export const pendingDeletion = (reason: string, failure?: { readonly message: string }) =>
  `${reason}${PENDING}${failure === undefined ? "" : ` (deleting them failed: ${failure.message})`}; cleanup deletes them`

const isPendingDeletion = (failReason: string | null) => failReason?.includes(PENDING) === true

/** The backup's own failure, without the pending-deletion note. */
const failureOf = (failReason: string | null) => {
  const reason = failReason ?? "failed"
  const at = reason.indexOf(PENDING)
  return at === -1 ? reason : reason.slice(0, at)
}

const ABANDONED = "abandoned: the process running it stopped (its lease expired)"

/**
 * Records left by versions before the mark. A failed backup whose objects
 * could not be deleted ended `error`, its fail_reason saying so. A cleanup
 * killed while deleting left `error_deleting` with the ABANDONED reason, for
 * an abandoned backup and an abandoned delete alike: one with no objects
 * counted never became available and ends `error`, the others `deleted`.
 */
const LEGACY_LEFTOVERS = "; its objects could not all be deleted ("
const isLegacyFailedBackup = (record: BackupRecord) =>
  (record.status === "error" && record.fail_reason?.includes(LEGACY_LEFTOVERS) === true) ||
  (record.status === "error_deleting" && record.fail_reason === ABANDONED && record.object_count === 0)
const legacyFailure = (failReason: string) => failReason.split(LEGACY_LEFTOVERS)[0]!

/**
 * Deletes the objects of a failed backup the caller has claimed in status
 * `error_deleting` (fail_reason marked by `pendingDeletion`), holding its
 * lease (unless the caller holds it, `held`); then `error` with the backup's
 * own failure. On a store failure it stays `error_deleting`, the reason
 * saying why, and the failure is returned.
 */
export const finishFailedBackup = (backupId: string, options: LeaseOptions = {}, held?: HeldLease) =>
  Effect.gen(function* () {
    const catalog = yield* BackupCatalog
    if (held === undefined) yield* holdLease(backupId, options)
    const record = yield* catalog.get(backupId)
    const reason = failureOf(record.fail_reason)
    const deleted = yield* deleteObjects(record).pipe(
      Effect.tapError((e) =>
        catalog.update(backupId, (r) => (r.status === "error_deleting" ? { ...r, fail_reason: pendingDeletion(reason, e) } : r))
      )
    )
    yield* catalog.transition(backupId, ["error_deleting"], "error", reason)
    return deleted
  }).pipe(Effect.scoped)

/** What cleanup does with a record: the claim to make, and the work that settles it. */
interface Plan {
  readonly from: BackupStatus
  readonly to: BackupStatus
  readonly failReason?: string
  readonly ends: BackupStatus
  readonly finish: (
    backupId: string,
    options: LeaseOptions
  ) => Effect.Effect<number, StoreFailure | BackupNotFound | CatalogError, BackupCatalog | ObjectStore>
}

/** The statuses planFor (and a lapsed restore's release) may act on. */
const UNSETTLED: ReadonlyArray<BackupStatus> = ["creating", "deleting", "error_deleting", "error", "restoring"]

const planFor = (record: BackupRecord, now: Date, options: LeaseOptions): Plan | undefined => {
  const failedBackup = (failReason?: string): Plan => ({
    from: record.status, to: "error_deleting", ends: "error", finish: finishFailedBackup,
    ...(failReason === undefined ? {} : { failReason })
  })
  const redelete: Plan = { from: record.status, to: "deleting", ends: "deleted", finish: finishDelete }
  switch (record.status) {
    case "creating":
      return leaseExpired(record, now, options) ? failedBackup(pendingDeletion(ABANDONED)) : undefined
    case "deleting":
      return leaseExpired(record, now, options) ? redelete : undefined
    case "error_deleting":
      if (leaseLive(record, now)) return undefined
      if (isPendingDeletion(record.fail_reason)) return failedBackup()
      return isLegacyFailedBackup(record) ? failedBackup(pendingDeletion(ABANDONED)) : redelete
    case "error":
      return isLegacyFailedBackup(record) && !leaseLive(record, now)
        ? failedBackup(pendingDeletion(legacyFailure(record.fail_reason!)))
        : undefined
    default:
      return undefined
  }
}

const isStoreFailure = (error: StoreFailure | BackupNotFound | CatalogError): error is StoreFailure =>
  error._tag !== "BackupNotFound" && error._tag !== "CatalogError"

/** Claims `record` by `plan` and settles it; undefined when another process got it first. */
const settle = (record: BackupRecord, plan: Plan, options: LeaseOptions) =>
  Effect.gen(function* () {
    if (!(yield* claim(record.id, [plan.from], plan.to, options, plan.failReason))) return undefined
    const base = { backupId: record.id, was: record.status }
    return yield* plan.finish(record.id, options).pipe(
      Effect.map((objectsDeleted): CleanupAction => ({ ...base, now: plan.ends, objectsDeleted })),
      // A store failure is this record's, and is reported; a catalog failure stops the cleanup.
      Effect.catchIf(isStoreFailure, (failure) => left(base, failure))
    )
  })

/** The action for a record whose objects are still there, in the status the failure left it. */
const left = (base: { readonly backupId: string; readonly was: string }, failure: StoreFailure) =>
  Effect.map(
    Effect.flatMap(BackupCatalog, (catalog) => catalog.get(base.backupId)),
    (record): CleanupAction => ({ ...base, now: record.status, objectsDeleted: 0, failure })
  )

/**
 * Settles every record a killed or failed process left behind (abandoned
 * backups, deletes and restores whose lease ran out; failed deletes) and
 * reports what it did. Safe to run at any time and from several processes.
 */
export const cleanup = (options: LeaseOptions = {}) =>
  Effect.gen(function* () {
    const catalog = yield* BackupCatalog
    const now = new Date()
    const actions: Array<CleanupAction> = []
    // Only records in a status that can need settling: not the available and deleted bulk of a catalog.
    for (const record of yield* catalog.list({ statuses: UNSETTLED })) {
      if (record.status === "restoring") {
        if (leaseExpired(record, now, options) && (yield* release(record.id, ["restoring"], "available"))) {
          actions.push({ backupId: record.id, was: "restoring", now: "available", objectsDeleted: 0 })
        }
        continue
      }
      const plan = planFor(record, now, options)
      const action = plan === undefined ? undefined : yield* settle(record, plan, options)
      if (action !== undefined) actions.push(action)
    }
    return actions
  }).pipe(Effect.withSpan("chunked-backup.cleanup"))

/** Every error a cleanup can end with (a record whose objects cannot be deleted is reported in its CleanupAction instead). */
export type CleanupError = Effect.Effect.Error<ReturnType<typeof cleanup>>

/**
 * After a failed, cancelled or interrupted backup: delete its objects, then
 * mark the record, holding its lease meanwhile (as cleanup does). A failed
 * backup ends `error`; a cancelled one (the record left `creating` for
 * `deleting`) ends `deleted`. Objects that cannot be deleted leave the record
 * `error_deleting`, which the next cleanup finishes.
 */
export const cleanUpAfterBackup = (backupId: string, cause: Cause.Cause<unknown>, options: LeaseOptions, held?: HeldLease) =>
  Effect.gen(function* () {
    const record = yield* (yield* BackupCatalog).get(backupId)
    // Interrupted after it was marked available: the backup is complete, keep it.
    if (record.status === "available") return
    const take = (from: ReadonlyArray<BackupStatus>, to: BackupStatus, failReason?: string) =>
      held === undefined ? claim(backupId, from, to, options, failReason) : held.transition(from, to, failReason)
    if (record.status === "deleting" || record.status === "deleted") {
      if (yield* take(["deleting", "deleted"], "deleting")) yield* finishDelete(backupId, options, held)
      return
    }
    const reason = failureReason(cause)
    // Claimed with the mark, so a cleanup finds the objects if deleting them fails here.
    if (yield* take(["creating"], "error_deleting", pendingDeletion(reason))) {
      yield* finishFailedBackup(backupId, options, held)
    }
  }).pipe(Effect.ignoreLogged, Effect.uninterruptible)
