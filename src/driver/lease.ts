/**
 * Leases: a running backup, restore or delete keeps `lease_expires_at` in
 * the future. A record left in progress with an expired lease belongs to a
 * process that died (SIGKILL, power loss); `cleanup` can then act on it
 * safely, without guessing from timestamps alone.
 */
import { Duration, Effect, Schedule } from "effect"
import { BackupCatalog } from "../catalog/BackupCatalog.js"
import type { BackupStatus } from "../domain/record.js"

export interface LeaseOptions {
  /** how long a lease lasts without renewal (default 30 s) */
  readonly leaseDuration?: Duration.DurationInput
}

export const defaultLease = Duration.seconds(30)

/**
 * Holds the lease of `backupId` for the enclosing scope: set now, renewed
 * every third of its duration, cleared when the scope closes.
 */
export const holdLease = (backupId: string, options: LeaseOptions = {}) =>
  Effect.gen(function* () {
    const catalog = yield* BackupCatalog
    const duration = Duration.decode(options.leaseDuration ?? defaultLease)
    const renew = catalog.update(backupId, (r) => ({
      ...r,
      lease_expires_at: new Date(Date.now() + Duration.toMillis(duration))
    }))
    yield* renew
    // A failed renewal is retried at the next tick; the lease still has two thirds to run.
    yield* renew.pipe(
      Effect.ignoreLogged,
      Effect.repeat(Schedule.spaced(Duration.times(duration, 1 / 3))),
      Effect.delay(Duration.times(duration, 1 / 3)),
      Effect.forkScoped
    )
    yield* Effect.addFinalizer(() =>
      catalog.update(backupId, (r) => ({ ...r, lease_expires_at: null })).pipe(Effect.ignoreLogged)
    )
  })

/**
 * Moves `backupId` from one of `from` to `to` and takes its lease in the same
 * write, so no cleanup can see it in progress without a lease.
 */
export const claim = (
  backupId: string,
  from: ReadonlyArray<string>,
  to: BackupStatus,
  options: LeaseOptions = {}
) =>
  Effect.flatMap(BackupCatalog, (catalog) => {
    const expires = new Date(Date.now() + Duration.toMillis(options.leaseDuration ?? defaultLease))
    let claimed = false
    const change = catalog.update(backupId, (r) => {
      claimed = from.includes(r.status)
      return claimed ? { ...r, status: to, lease_expires_at: expires } : r
    })
    return Effect.map(change, () => claimed)
  })

/** Whether a record's lease has run out (a record never leased counts from its creation). */
export const leaseExpired = (
  record: { readonly lease_expires_at: Date | null; readonly created_at: Date },
  now: Date,
  options: LeaseOptions = {}
): boolean => {
  const expiry = record.lease_expires_at ?? new Date(record.created_at.getTime() + Duration.toMillis(options.leaseDuration ?? defaultLease))
  return expiry.getTime() < now.getTime()
}
