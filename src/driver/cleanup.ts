/**
 * Cleanup after processes that died: records still `creating`, `deleting`
 * or `restoring` whose lease ran out. An abandoned backup loses its objects
 * and becomes `error`; an abandoned delete is finished; an abandoned restore
 * hands the backup back as `available` (the store was only read).
 */
import { Effect } from "effect"
import { BackupCatalog } from "../catalog/BackupCatalog.js"
import { leaseExpired, type LeaseOptions } from "./lease.js"
import { deleteObjects } from "./objects.js"

export interface CleanupAction {
  readonly backupId: string
  readonly was: string
  readonly now: string
  readonly objectsDeleted: number
}

export const cleanup = (options: LeaseOptions = {}) =>
  Effect.gen(function* () {
    const catalog = yield* BackupCatalog
    const now = new Date()
    const stale = (yield* catalog.list()).filter(
      (r) => (r.status === "creating" || r.status === "deleting" || r.status === "restoring") && leaseExpired(r, now, options)
    )
    const actions: Array<CleanupAction> = []
    for (const record of stale) {
      if (record.status === "restoring") {
        if (yield* catalog.transition(record.id, ["restoring"], "available")) {
          actions.push({ backupId: record.id, was: "restoring", now: "available", objectsDeleted: 0 })
        }
        continue
      }
      // Claim it first, so two cleanups never work on the same record.
      const target = record.status === "creating" ? "error" : "deleted"
      const reason = "abandoned: the process running it stopped (its lease expired)"
      if (!(yield* catalog.transition(record.id, [record.status], "error_deleting", reason))) continue
      const deleted = yield* deleteObjects(record)
      yield* catalog.transition(record.id, ["error_deleting"], target, reason)
      actions.push({ backupId: record.id, was: record.status, now: target, objectsDeleted: deleted })
    }
    return actions
  }).pipe(Effect.withSpan("chunked-backup.cleanup"))
