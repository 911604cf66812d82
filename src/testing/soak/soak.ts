/**
 * The soak: random operations from several CLI processes at once (backups,
 * incrementals, restores, deletes, cleanups, cancels and kill -9 of running
 * ones) on a handful of volumes, against one target at a time, with the
 * invariants of invariants.ts checked after every step. A step runs 1 to
 * `concurrency` operations at once, each on a volume of its own (a cleanup
 * on none); every few steps the soak settles: it waits for every lease to
 * run out, runs cleanup and checks the strict invariants.
 */
import { Effect } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { checkInvariants } from "./invariants.js"
import { backupOp, cancelBackupOp, cancelRestoreOp, cleanupOp, deleteOp, killOp, restoreOp } from "./operations.js"
import { makeRng, type Rng } from "./random.js"
import { newSummary, type SoakState, type TargetSummary } from "./state.js"
import { posixTarget, swiftTarget, type SwiftAccount, type Target } from "./targets.js"
import { editVolume, makeVolumes, type Volume } from "./volumes.js"

export interface SoakOptions {
  readonly seed: number
  /** wall-clock budget, split evenly over the targets */
  readonly seconds: number
  readonly targets: ReadonlyArray<"posix" | "swift">
  /** needed for the swift target */
  readonly swift?: SwiftAccount
  /** the CLI to run: the path of dist/cli.mjs (or bin/chunked-backup) */
  readonly cli: string
  /** operations at once, at most (default 3) */
  readonly concurrency?: number
  /** default 3 */
  readonly volumes?: number
  /** the CLI's lease (CHUNKED_BACKUP_LEASE_SECONDS), short so killed work is settled soon; default 5 */
  readonly leaseSeconds?: number
  /** a line of progress now and then */
  readonly log?: (line: string) => void
}

export interface SoakReport {
  readonly seed: number
  readonly targets: ReadonlyArray<TargetSummary>
  readonly violations: number
  readonly seconds: number
}

/** Settle every this many steps; verify every available backup every VERIFY_ALL_EVERY steps. */
const SETTLE_EVERY = 6
const VERIFY_ALL_EVERY = 18
/** A volume with more available backups than this is trimmed (deletes preferred), so verifying them all stays quick. */
const KEEP_AVAILABLE = 6

const WEIGHTS = [
  ["backup", 2],
  ["incremental", 4],
  ["restore", 3],
  ["delete", 2],
  ["cleanup", 1],
  ["cancel-backup", 1],
  ["cancel-restore", 1],
  ["kill", 1.5]
] as const
type Pick = (typeof WEIGHTS)[number][0] | "kill-backup" | "kill-restore" | "kill-delete"

/**
 * The first steps of each target begin with these, one each, so that every
 * kind of operation and fault happens in even a short soak.
 */
const TOUR: ReadonlyArray<Pick> = [
  "backup", "incremental", "restore", "kill-delete", "cancel-backup", "cancel-restore", "kill-backup", "kill-restore", "incremental", "delete", "cleanup"
]

const weighted = (rng: Rng): Pick => {
  let at = rng.next() * WEIGHTS.reduce((sum, [, w]) => sum + w, 0)
  for (const [kind, weight] of WEIGHTS) if ((at -= weight) < 0) return kind
  return "incremental"
}

const shuffled = <A>(rng: Rng, items: ReadonlyArray<A>) => {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(0, i)
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

/** One operation on `volume`, chosen by `kind` where the records allow it. */
const operationOn = (state: SoakState, volume: Volume, chosen: Pick) => {
  const available = state.records.filter((r) => r.volume_id === volume.id && r.status === "available")
  const kind = available.length > KEEP_AVAILABLE && state.rng.chance(0.6) ? "delete" : chosen
  switch (kind) {
    case "backup":
      return backupOp(state, volume, false)
    case "incremental":
      return backupOp(state, volume, available.length > 0)
    case "restore":
      return available.length > 0 ? restoreOp(state, volume, state.rng.pick(available)) : backupOp(state, volume, false)
    case "delete":
      return deleteOp(state, volume)
    case "cancel-restore":
      return available.length > 0 ? cancelRestoreOp(state, state.rng.pick(available)) : cancelBackupOp(state, volume)
    case "cancel-backup":
      return cancelBackupOp(state, volume)
    case "kill":
      return killOp(state, volume)
    case "cleanup":
      return Effect.asVoid(cleanupOp(state))
    default:
      return killOp(state, volume, kind)
  }
}

/** Runs one step's operations at once; resolves with when its cleanup began, if it ran one that exited 0. */
const step = (state: SoakState, concurrency: number) =>
  Effect.gen(function* () {
    for (const volume of state.volumes) if (state.rng.chance(0.5)) editVolume(state.rng, volume)
    const availableOn = (v: Volume) => state.records.filter((r) => r.volume_id === v.id && r.status === "available").length
    // The tour's operation goes first, on the volume with the most backups to work on.
    const volumes = shuffled(state.rng, state.volumes).sort((a, b) => availableOn(a) - availableOn(b))
    let cleanupStartedAt: number | undefined
    const operations = Array.from({ length: state.rng.int(1, Math.min(concurrency, volumes.length)) }, (_, i) => {
      const kind = i === 0 && state.step <= TOUR.length ? TOUR[state.step - 1]! : weighted(state.rng)
      if (kind === "cleanup") return Effect.map(cleanupOp(state), (at) => void (cleanupStartedAt = at))
      return operationOn(state, volumes.pop()!, kind)
    })
    yield* Effect.all(operations, { concurrency: "unbounded", discard: true })
    return cleanupStartedAt
  })

/** Waits until every lease a killed process held has run out, runs cleanup, and checks the strict invariants. */
const settle = (state: SoakState, verifyAll: boolean) =>
  Effect.gen(function* () {
    const wait = state.lastKillAt + state.leaseSeconds * 1000 + 500 - Date.now()
    if (wait > 0) yield* Effect.sleep(wait)
    state.summary.checks.settles++
    const cleanupStartedAt = yield* cleanupOp(state)
    yield* checkInvariants(state, cleanupStartedAt === undefined ? { verifyAll } : { cleanupStartedAt, settled: true, verifyAll })
  })

/** The soak on one target for `seconds`. */
export const soakTarget = (options: SoakOptions, target: Target, dir: string, rng: Rng, seconds: number) =>
  Effect.gen(function* () {
    const began = Date.now()
    const state: SoakState = {
      rng,
      seed: options.seed,
      target,
      cli: options.cli,
      dir,
      leaseSeconds: options.leaseSeconds ?? 5,
      volumes: makeVolumes(rng, dir, options.volumes ?? 3),
      expected: new Map(),
      obligations: new Map(),
      verified: new Set(),
      records: [],
      step: 0,
      lastKillAt: 0,
      lastCleanup: "none yet",
      summary: newSummary(target)
    }
    options.log?.(`soak: ${target.name} (${target.where}) for ${seconds} s`)
    while (Date.now() - began < seconds * 1000) {
      state.step++
      const cleanupStartedAt = yield* step(state, options.concurrency ?? 3)
      if (state.step % SETTLE_EVERY === 0) yield* settle(state, state.step % VERIFY_ALL_EVERY === 0)
      else yield* checkInvariants(state, cleanupStartedAt === undefined ? {} : { cleanupStartedAt })
      if (state.step % 10 === 0) {
        const ops = Object.values(state.summary.operations).reduce((a, b) => a + b, 0)
        options.log?.(`soak: ${target.name} step ${state.step}: ${ops} operations, ${state.summary.faults.kills} kills, ${state.summary.faults.cancels} cancels, ${state.summary.violations.length} violations`)
      }
    }
    state.step++
    yield* settle(state, true)
    state.summary.steps = state.step
    state.summary.seconds = Math.round((Date.now() - began) / 100) / 10
    return state.summary
  })

const makeTarget = (options: SoakOptions, name: "posix" | "swift", dir: string): Target => {
  if (name === "posix") return posixTarget(dir)
  if (options.swift === undefined) throw new Error("the swift target needs a Swift account (SWIFT_LOOPBACK_AUTH_URL, or SWIFT_AUTH_URL with SWIFT_USER and SWIFT_KEY)")
  return swiftTarget(dir, options.swift)
}

/** The soak on each target in turn, the time split evenly, each in a temporary directory of its own that is removed after. */
export const runSoak = (options: SoakOptions) =>
  Effect.gen(function* () {
    const began = Date.now()
    const rng = makeRng(options.seed)
    const summaries: Array<TargetSummary> = []
    for (const name of options.targets) {
      const summary = yield* Effect.acquireUseRelease(
        Effect.sync(() => mkdtempSync(join(tmpdir(), `cb-soak-${name}-`))),
        (dir) => {
          const target = makeTarget(options, name, dir)
          return soakTarget(options, target, dir, rng, options.seconds / options.targets.length).pipe(Effect.ensuring(target.dispose))
        },
        (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
      )
      summaries.push(summary)
    }
    return {
      seed: options.seed,
      targets: summaries,
      violations: summaries.reduce((n, s) => n + s.violations.length, 0),
      seconds: Math.round((Date.now() - began) / 100) / 10
    } satisfies SoakReport
  })
