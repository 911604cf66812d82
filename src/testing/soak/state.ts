/**
 * What one soak run on one target knows and counts: its volumes, the bytes
 * each backup must restore to, the records as the CLI last listed them, what
 * each step's outcomes oblige the records to be, and the figures of the
 * summary. Every violation is kept with the seed and step that replay it.
 */
import type { Rng } from "./random.js"
import { spawnCli, type Running, type SpawnOptions } from "./process.js"
import type { Target } from "./targets.js"
import type { Volume } from "./volumes.js"

export const OPERATION_KINDS = [
  "backup",
  "incremental",
  "restore",
  "delete",
  "cleanup",
  "cancel-backup",
  "cancel-restore",
  "kill-backup",
  "kill-restore",
  "kill-delete"
] as const
export type OperationKind = (typeof OPERATION_KINDS)[number]

/** A record as `--json list --all` prints it (the fields the soak reads). */
export interface ListedRecord {
  readonly id: string
  readonly volume_id: string
  readonly parent_id: string | null
  readonly status: string
  readonly container: string | null
  readonly service_metadata: string | null
  readonly created_at: string
  readonly lease_expires_at: string | null
}

export const IN_PROGRESS = ["creating", "deleting", "restoring", "error_deleting"]

export interface Violation {
  readonly target: string
  readonly seed: number
  readonly step: number
  readonly what: string
}

export interface TargetSummary {
  readonly target: string
  readonly where: string
  steps: number
  readonly operations: Record<OperationKind, number>
  /** `kind:outcome` -> count, e.g. `delete:refused (dependents)` */
  readonly outcomes: Record<string, number>
  readonly faults: { kills: number; cancels: number }
  readonly checks: { verifies: number; storeListings: number; recordListings: number; settles: number }
  readonly violations: Array<Violation>
  seconds: number
}

export interface SoakState {
  readonly rng: Rng
  readonly seed: number
  readonly target: Target
  readonly cli: string
  readonly dir: string
  readonly leaseSeconds: number
  readonly volumes: ReadonlyArray<Volume>
  /** backup id -> sha256 of the volume when that backup began */
  readonly expected: Map<string, string>
  /** backup id -> the statuses the outcome of this step allows it to be in at the next check */
  readonly obligations: Map<string, { readonly statuses: ReadonlyArray<string>; readonly why: string }>
  /** backups that passed `verify --full` while available (a backup's objects never change after) */
  readonly verified: Set<string>
  records: ReadonlyArray<ListedRecord>
  step: number
  /** when the soak last killed a CLI process (ms since the epoch), 0 if never */
  lastKillAt: number
  /** what the last cleanup said, for a violation's text */
  lastCleanup: string
  readonly summary: TargetSummary
}

export const newSummary = (target: Target): TargetSummary => ({
  target: target.name,
  where: target.where,
  steps: 0,
  operations: Object.fromEntries(OPERATION_KINDS.map((k) => [k, 0])) as Record<OperationKind, number>,
  outcomes: {},
  faults: { kills: 0, cancels: 0 },
  checks: { verifies: 0, storeListings: 0, recordListings: 0, settles: 0 },
  violations: [],
  seconds: 0
})

export const violation = (state: SoakState, what: string) => {
  const v = { target: state.target.name, seed: state.seed, step: state.step, what }
  state.summary.violations.push(v)
  process.stderr.write(`soak: VIOLATION (seed ${v.seed}, target ${v.target}, step ${v.step}): ${what}\n`)
}

export const count = (state: SoakState, kind: OperationKind, outcome: string) => {
  const key = `${kind}:${outcome}`
  state.summary.outcomes[key] = (state.summary.outcomes[key] ?? 0) + 1
}

/** Starts the CLI on the state's target, with the soak's short lease. */
export const startCli = (state: SoakState, args: ReadonlyArray<string>, extra: Partial<Omit<SpawnOptions, "cli" | "args" | "env">> = {}): Running =>
  spawnCli({
    cli: state.cli,
    args: [...state.target.globals, ...args],
    env: { ...state.target.env, CHUNKED_BACKUP_LEASE_SECONDS: String(state.leaseSeconds) },
    ...extra
  })

/** What a finished command said, for a violation's text. */
export const said = (args: ReadonlyArray<string>, r: { code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string }) =>
  `\`${args.join(" ")}\` exited ${r.code ?? r.signal}: ${(r.stderr.split("\n").filter((l) => l !== "" && !l.startsWith("{")).join(" | ") || r.stdout).slice(0, 600)}`
