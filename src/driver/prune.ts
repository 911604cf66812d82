/**
 * Prune: applies a retention policy (./retention.ts) to the catalog and
 * deletes what it removes through the normal delete, one backup at a time,
 * every dependent before what it depends on. Each delete leaves the
 * remaining chains whole, so an interrupted prune (a kill, an interruption)
 * leaves every remaining backup restorable; the delete it interrupted is
 * finished by `cleanup`, by the next prune, or by deleting again.
 */
import { Clock, Effect } from "effect"
import { BackupCatalog } from "../catalog/BackupCatalog.js"
import { InvalidRequest } from "../domain/errors.js"
import { deleteBackup, type DeleteResult } from "./delete.js"
import type { LeaseOptions } from "./lease.js"
import { isEmptyPolicy, planRetention, policyProblem, type RetentionPlan, type RetentionPolicy } from "./retention.js"

/** How a prune runs: which volume, whether it only plans, and callbacks for the plan and each delete. */
export interface PruneOptions extends LeaseOptions {
  /** only this volume's backups (default: every volume) */
  readonly volumeId?: string
  /** plan only: delete nothing */
  readonly dryRun?: boolean
  /** called with the plan before the first delete */
  readonly onPlan?: (plan: RetentionPlan) => Effect.Effect<void>
  /** called after each backup is deleted */
  readonly onDeleted?: (result: DeleteResult) => Effect.Effect<void>
}

/** What a prune did: its plan and the deletes, in order. */
export interface PruneReport {
  readonly plan: RetentionPlan
  /** what was deleted, in order (empty for a dry run) */
  readonly deleted: ReadonlyArray<DeleteResult>
  readonly dryRun: boolean
}

/** Refuses a policy that sets no rule (it would delete everything) or a count below -1. */
export const checkPolicy = (policy: RetentionPolicy) => {
  const problem = policyProblem(policy)
  if (problem !== undefined) return Effect.fail(new InvalidRequest({ reason: problem }))
  if (isEmptyPolicy(policy)) {
    return Effect.fail(
      new InvalidRequest({
        reason: "prune needs at least one keep rule (--keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly or --keep-within): without one it would delete every backup"
      })
    )
  }
  return Effect.void
}

/** Plans with the policy and, unless `dryRun`, deletes every backup the plan removes. */
export const prune = (policy: RetentionPolicy, options: PruneOptions = {}) =>
  Effect.gen(function* () {
    yield* checkPolicy(policy)
    const catalog = yield* BackupCatalog
    const records = yield* catalog.list(options.volumeId === undefined ? {} : { volumeId: options.volumeId })
    const plan = planRetention(records, policy, new Date(yield* Clock.currentTimeMillis))
    if (options.onPlan !== undefined) yield* options.onPlan(plan)
    const deleted: Array<DeleteResult> = []
    if (options.dryRun !== true) {
      for (const id of plan.deletionOrder) {
        const result = yield* deleteBackup(id, options)
        deleted.push(result)
        if (options.onDeleted !== undefined) yield* options.onDeleted(result)
      }
    }
    return { plan, deleted, dryRun: options.dryRun === true } satisfies PruneReport
  }).pipe(Effect.withSpan("chunked-backup.prune", { attributes: { volumeId: options.volumeId ?? "all", dryRun: options.dryRun === true } }))

/** Every error a prune can end with. */
export type PruneError = Effect.Effect.Error<ReturnType<typeof prune>>
