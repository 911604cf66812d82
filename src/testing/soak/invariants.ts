/**
 * The invariants the soak checks when no operation runs (after each step):
 *
 * - the records are what the step's outcomes oblige (a backup that exited 0
 *   is available, a deleted one deleted, a cancelled one not available) and
 *   every record is one the soak made;
 * - no record is in progress under a lease no process holds: with nothing
 *   running, a lease can only be a killed process's, so it ends within a
 *   lease of the last kill; after a `cleanup`, no record is in progress whose
 *   lease had run out when the cleanup began; once settled (every lease run
 *   out, then cleanup), none is in progress at all;
 * - every available backup verifies (`verify --full`): the new ones after
 *   each step, all of them now and then and at the end;
 * - every object in the store belongs to a record that is not `deleted` or
 *   `error`; once settled, to an `available` one, with no temporary file
 *   and (posix) no empty directory left.
 */
import { Effect } from "effect"
import { exitCodes } from "../../cli/errors.js"
import { inProgress } from "./operations.js"
import { said, startCli, violation, type ListedRecord, type SoakState } from "./state.js"
import type { StoredObject } from "./targets.js"
import { TEMP_PREFIX } from "../../store/posix.js"

export const listRecords = (state: SoakState) =>
  Effect.gen(function* () {
    const args = ["--json", "list", "--all"]
    const r = yield* Effect.promise(() => startCli(state, args).finished)
    state.summary.checks.recordListings++
    // No repository yet: no backup has been made.
    if (r.code === exitCodes.RepositoryNotFound) return (state.records = [])
    if (r.code !== 0) {
      violation(state, `listing the records: ${said(args, r)}`)
      return state.records
    }
    return (state.records = JSON.parse(r.stdout) as Array<ListedRecord>)
  })

const expiryOf = (state: SoakState, record: ListedRecord) =>
  record.lease_expires_at === null ? Date.parse(record.created_at) + state.leaseSeconds * 1000 : Date.parse(record.lease_expires_at)

/** Slack for clocks and renewals in flight when a process was killed. */
const SLACK_MS = 2000

export interface CheckOptions {
  /** when a cleanup that exited 0 in this step began */
  readonly cleanupStartedAt?: number
  /** every lease had run out before that cleanup began */
  readonly settled?: boolean
  /** verify every available backup, not only the new ones */
  readonly verifyAll?: boolean
}

const checkRecords = (state: SoakState, records: ReadonlyArray<ListedRecord>, options: CheckOptions) => {
  const byId = new Map(records.map((r) => [r.id, r]))
  for (const [id, { statuses, why }] of state.obligations) {
    const status = byId.get(id)?.status ?? "absent"
    if (!statuses.includes(status)) violation(state, `backup ${id} is ${status}, but ${why} (expected ${statuses.join(" or ")})`)
  }
  state.obligations.clear()
  const heldUntil = state.lastKillAt + state.leaseSeconds * 1000 + SLACK_MS
  for (const record of records) {
    if (!state.expected.has(record.id)) violation(state, `record ${record.id} (${record.status}) is no backup the soak made`)
    if (!inProgress(record)) continue
    const expiry = expiryOf(state, record)
    const lease = record.lease_expires_at ?? "none"
    if (options.settled === true) violation(state, `backup ${record.id} is still ${record.status} (lease ${lease}) after every lease ran out and cleanup ran (${state.lastCleanup})`)
    else if (options.cleanupStartedAt !== undefined && expiry < options.cleanupStartedAt) {
      violation(state, `backup ${record.id} is still ${record.status} after a cleanup, its lease (${lease}) having run out before that cleanup began`)
    } else if (expiry > heldUntil) {
      violation(state, `backup ${record.id} is ${record.status} with lease ${lease} while no process runs (last kill ${state.lastKillAt === 0 ? "never" : new Date(state.lastKillAt).toISOString()})`)
    }
  }
}

const verifyAll = (state: SoakState, records: ReadonlyArray<ListedRecord>, all: boolean) =>
  Effect.forEach(
    records.filter((r) => r.status === "available" && (all || !state.verified.has(r.id))),
    (record) =>
      Effect.gen(function* () {
        const args = ["verify", record.id, "--full"]
        const r = yield* Effect.promise(() => startCli(state, args).finished)
        state.summary.checks.verifies++
        if (r.code === 0) state.verified.add(record.id)
        else violation(state, `available backup ${record.id} does not verify: ${said(args, r)}`)
      }),
    { concurrency: 2, discard: true }
  )

/** The record an object (or a posix temporary file) belongs to, by its container and name. */
const ownerOf = (records: ReadonlyArray<ListedRecord>) => {
  const byContainer = new Map<string, Array<ListedRecord>>()
  for (const r of records) {
    if (r.container === null || r.service_metadata === null) continue
    byContainer.set(r.container, [...(byContainer.get(r.container) ?? []), r])
  }
  return (object: StoredObject): { record?: ListedRecord; temporary: boolean } => {
    const temporary = object.name.startsWith(TEMP_PREFIX)
    const name = temporary ? object.name.slice(TEMP_PREFIX.length) : object.name
    const record = (byContainer.get(object.container) ?? []).find((r) => {
      const prefix = r.service_metadata!
      if (!name.startsWith(prefix)) return false
      const rest = name.slice(prefix.length)
      return temporary || rest === "_metadata" || rest === "_sha256file" || /^-\d{5,}$/.test(rest)
    })
    return { ...(record === undefined ? {} : { record }), temporary }
  }
}

/** At most this many of one check's findings are reported one by one. */
const REPORTED = 5

const checkStore = (state: SoakState, records: ReadonlyArray<ListedRecord>, settled: boolean) =>
  Effect.gen(function* () {
    const listing = yield* state.target.list.pipe(
      Effect.catchAllCause((cause) => Effect.sync(() => violation(state, `listing the store failed: ${String(cause)}`)))
    )
    if (listing === undefined) return
    state.summary.checks.storeListings++
    const owner = ownerOf(records)
    const findings: Array<string> = []
    for (const object of listing.objects) {
      const { record, temporary } = owner(object)
      const what = `${temporary ? "temporary file" : "object"} ${object.container}/${object.name}`
      if (record === undefined) findings.push(`${what} belongs to no record`)
      else if (record.status === "deleted" || record.status === "error") findings.push(`${what} belongs to backup ${record.id}, which is ${record.status}`)
      else if (settled && (record.status !== "available" || temporary)) findings.push(`${what} of backup ${record.id} (${record.status}) is left after every lease ran out and cleanup ran`)
    }
    if (settled) for (const dir of listing.emptyDirectories) findings.push(`empty directory ${dir} is left in the store after cleanup`)
    for (const finding of findings.slice(0, REPORTED)) violation(state, finding)
    if (findings.length > REPORTED) violation(state, `and ${findings.length - REPORTED} more such findings in the store`)
  })

/** Every invariant, with nothing running; returns the records as now listed. */
export const checkInvariants = (state: SoakState, options: CheckOptions = {}) =>
  Effect.gen(function* () {
    const records = yield* listRecords(state)
    checkRecords(state, records, options)
    yield* verifyAll(state, records, options.verifyAll === true)
    yield* checkStore(state, records, options.settled === true)
  })
