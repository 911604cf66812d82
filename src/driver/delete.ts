/**
 * Delete: Cinder's delete_backup plus the manager's checks. A backup that
 * incremental backups depend on is refused; otherwise its objects under the
 * prefix are deleted and the record ends `deleted`. A delete that fails
 * leaves `error_deleting`, as in Cinder; deleting again (or `cleanup`)
 * finishes it.
 */
import { Effect } from "effect"
import { InvalidRequest } from "../domain/errors.js"
import { BackupCatalog, dependentsOf } from "../catalog/BackupCatalog.js"
import { claim, holdLease, type HeldLease, type LeaseOptions } from "./lease.js"
import { deleteObjects } from "./objects.js"

/**
 * Finishes the delete of `backupId`, which the caller has claimed in status
 * `deleting`: holds its lease while the objects go (unless the caller holds
 * it, `held`), then `deleted`; on a failure, `error_deleting` with the
 * reason, and the failure.
 */
export const finishDelete = (backupId: string, options: LeaseOptions = {}, held?: HeldLease) =>
  Effect.gen(function* () {
    const catalog = yield* BackupCatalog
    if (held === undefined) yield* holdLease(backupId, options)
    const deleted = yield* deleteObjects(yield* catalog.get(backupId)).pipe(
      Effect.tapError((e) => catalog.transition(backupId, ["deleting"], "error_deleting", e.message))
    )
    yield* catalog.transition(backupId, ["deleting"], "deleted")
    return deleted
  }).pipe(Effect.scoped)

/**
 * Deletes backup `backupId`: refused (InvalidRequest) while an incremental
 * depends on it; otherwise its objects are deleted and the record ends
 * `deleted`. A delete that fails leaves `error_deleting`; deleting again
 * or `cleanup` finishes it.
 */
export const deleteBackup = (backupId: string, options: LeaseOptions = {}) =>
  Effect.gen(function* () {
    const catalog = yield* BackupCatalog
    const record = yield* catalog.get(backupId)
    const dependents = yield* dependentsOf(catalog, backupId)
    if (dependents.length > 0) {
      return yield* new InvalidRequest({
        reason: `backup ${backupId} has dependent incremental backups (${dependents.map((d) => d.id).join(", ")}); delete those first`
      })
    }
    // Refused as well while another process holds the record's lease.
    const allowed = ["available", "error", "error_deleting", "deleting"] as const
    if (!(yield* claim(backupId, allowed, "deleting", options))) {
      return yield* new InvalidRequest({ reason: `backup ${backupId} is ${record.status} and cannot be deleted now` })
    }
    const deleted = yield* finishDelete(backupId, options)
    return { backupId, objectsDeleted: deleted }
  }).pipe(Effect.withSpan("chunked-backup.delete", { attributes: { backupId } }))

/** What a delete resolves with: the backup and how many objects were deleted. */
export type DeleteResult = Effect.Effect.Success<ReturnType<typeof deleteBackup>>

/** Every error a delete can end with. */
export type DeleteError = Effect.Effect.Error<ReturnType<typeof deleteBackup>>
