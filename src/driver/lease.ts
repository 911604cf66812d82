/**
 * Leases: a running backup, restore or delete keeps `lease_expires_at` in
 * the future. A record left in progress with an expired lease belongs to a
 * process that died (SIGKILL, power loss); `cleanup` can then act on it
 * safely, without guessing from timestamps alone.
 */
import { Duration, Effect, Schedule } from "effect"
import { BackupCatalog } from "../catalog/BackupCatalog.js"
import type { BackupNotFound, CatalogError } from "../domain/errors.js"
import type { BackupRecord, BackupStatus } from "../domain/record.js"

/** The lease a running operation holds on its record, so that cleanup never overtakes a live process. */
export interface LeaseOptions {
  /** how long a lease lasts without renewal (default 30 s) */
  readonly leaseDuration?: Duration.DurationInput
}

export const defaultLease = Duration.seconds(30)

/** A lease this process holds (see holdLease). */
export interface HeldLease {
  /**
   * Moves the record from one of `from` to `to` (writing `failReason`, when
   * given) if the lease on it is still this holder's, keeping the lease: a
   * holder that goes on to clean up needs no new claim. Returns whether it
   * applied.
   */
  readonly transition: (from: ReadonlyArray<BackupStatus>, to: BackupStatus, failReason?: string) => Effect.Effect<boolean, CatalogError | BackupNotFound>
}

/**
 * Holds the lease of `backupId` for the enclosing scope: set now, renewed
 * every third of its duration, cleared when the scope closes. Renewals and
 * the clearing touch only the lease this holder wrote last: a holder that
 * was stalled past its lease, and whose record another process took over
 * meanwhile, neither extends nor clears the new holder's lease.
 */
export const holdLease = (backupId: string, options: LeaseOptions = {}) =>
  Effect.gen(function* () {
    const catalog = yield* BackupCatalog
    const duration = Duration.decode(options.leaseDuration ?? defaultLease)
    let mine: number | undefined
    const write = (next: () => Date | null, always: boolean) =>
      Effect.suspend(() => {
        const lease = next()
        let wrote = false
        return catalog.update(backupId, (r) => {
          wrote = always || (mine !== undefined && r.lease_expires_at?.getTime() === mine)
          return wrote ? { ...r, lease_expires_at: lease } : r
        }).pipe(
          Effect.tap(() =>
            Effect.sync(() => {
              if (wrote) mine = lease?.getTime()
            })
          )
        )
      })
    const expiry = () => new Date(Date.now() + Duration.toMillis(duration))
    yield* write(expiry, true)
    // A failed renewal is retried at the next tick; the lease still has two thirds to run.
    yield* write(expiry, false).pipe(
      Effect.ignoreLogged,
      Effect.repeat(Schedule.spaced(Duration.times(duration, 1 / 3))),
      Effect.delay(Duration.times(duration, 1 / 3)),
      // Interruptible even when the holder is not (a backup's clean-up): else closing the scope would wait forever.
      Effect.interruptible,
      Effect.forkScoped
    )
    yield* Effect.addFinalizer(() => write(() => null, false).pipe(Effect.ignoreLogged))
    const transition: HeldLease["transition"] = (from, to, failReason) =>
      Effect.suspend(() => {
        let applied = false
        return catalog.update(backupId, (r) => {
          applied = mine !== undefined && r.lease_expires_at?.getTime() === mine && from.includes(r.status)
          return applied ? { ...r, status: to, ...(failReason === undefined ? {} : { fail_reason: failReason }) } : r
        }).pipe(Effect.map(() => applied))
      })
    return { transition } satisfies HeldLease
  })

/** Whether someone holds the record's lease right now (it is set and has not run out). */
export const leaseLive = (record: { readonly lease_expires_at: Date | null }, now: Date): boolean =>
  record.lease_expires_at !== null && record.lease_expires_at.getTime() >= now.getTime()

/**
 * Applies `change` to `backupId` when its status is one of `from` and no
 * live lease is on it, in one atomic write: whoever holds a lease is still
 * working on the record and is never overtaken. Returns whether it applied.
 */
const takeOver = (backupId: string, from: ReadonlyArray<string>, change: (record: BackupRecord) => BackupRecord) =>
  Effect.flatMap(BackupCatalog, (catalog) => {
    let taken = false
    const write = catalog.update(backupId, (r) => {
      taken = from.includes(r.status) && !leaseLive(r, new Date())
      return taken ? change(r) : r
    })
    return Effect.map(write, () => taken)
  })

/**
 * Moves `backupId` from one of `from` to `to` and takes its lease in the same
 * write, so no cleanup can see it in progress without a lease. Refused while
 * another process's lease on it is live. `failReason`, when given, is written
 * too (cleanup reads it to know how a record it resumes must end).
 */
export const claim = (
  backupId: string,
  from: ReadonlyArray<string>,
  to: BackupStatus,
  options: LeaseOptions = {},
  failReason?: string
) => {
  const expires = new Date(Date.now() + Duration.toMillis(options.leaseDuration ?? defaultLease))
  return takeOver(backupId, from, (r) => ({
    ...r,
    status: to,
    lease_expires_at: expires,
    ...(failReason === undefined ? {} : { fail_reason: failReason })
  }))
}

/** Moves `backupId` from one of `from` to `to` with no lease left, unless a live lease is on it. */
export const release = (backupId: string, from: ReadonlyArray<string>, to: BackupStatus) =>
  takeOver(backupId, from, (r) => ({ ...r, status: to, lease_expires_at: null }))

/** Whether a record's lease has run out (a record never leased counts from its creation). */
export const leaseExpired = (
  record: { readonly lease_expires_at: Date | null; readonly created_at: Date },
  now: Date,
  options: LeaseOptions = {}
): boolean => {
  const expiry = record.lease_expires_at ?? new Date(record.created_at.getTime() + Duration.toMillis(options.leaseDuration ?? defaultLease))
  return expiry.getTime() < now.getTime()
}
