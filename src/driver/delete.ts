/**
 * Delete: Cinder's delete_backup plus the manager's checks. A backup that
 * incremental backups depend on is refused; otherwise its objects under the
 * prefix are deleted and the record ends `deleted`.
 */
import { Effect } from "effect"
import { InvalidRequest } from "../domain/errors.js"
import { BackupCatalog, dependentsOf } from "../catalog/BackupCatalog.js"
import { claim, holdLease } from "./lease.js"
import { deleteObjects } from "./objects.js"

export const deleteBackup = (backupId: string) =>
  Effect.gen(function* () {
    const catalog = yield* BackupCatalog
    const record = yield* catalog.get(backupId)
    const dependents = yield* dependentsOf(catalog, backupId)
    if (dependents.length > 0) {
      return yield* new InvalidRequest({
        reason: `backup ${backupId} has dependent incremental backups (${dependents.map((d) => d.id).join(", ")}); delete those first`
      })
    }
    const allowed = ["available", "error", "error_deleting", "deleting"] as const
    if (!(yield* claim(backupId, allowed, "deleting"))) {
      return yield* new InvalidRequest({ reason: `backup ${backupId} is ${record.status} and cannot be deleted now` })
    }
    yield* holdLease(backupId)
    const deleted = yield* deleteObjects(record).pipe(
      Effect.tapError((e) => catalog.transition(backupId, ["deleting"], "error_deleting", e.message))
    )
    yield* catalog.transition(backupId, ["deleting"], "deleted")
    return { backupId, objectsDeleted: deleted }
  }).pipe(Effect.scoped, Effect.withSpan("chunked-backup.delete", { attributes: { backupId } }))
