/**
 * A small model of restic's keep rules and the chain rule, written apart
 * from src/driver/retention.ts (set-wise, not as restic's one walk) so the
 * property tests compare two formulations:
 * - a counted rule with N keeps the newest backup of each of the N newest
 *   periods that have a backup, and the oldest backup as well when fewer
 *   than N periods have one (N = -1: every period, and the oldest);
 * - `within` keeps what is newer than the newest past backup minus the
 *   duration, calendar months rolling over as Go's AddDate does;
 * - what must stay is the kept backups, the backups prune does not decide
 *   on, and every ancestor of those; everything else is deleted.
 */
import { FastCheck as fc } from "effect"
import { newBackupRecord, type BackupRecord, type BackupStatus } from "../../src/index.js"
import { isEmptyPolicy, type RetentionPolicy } from "../../src/driver/retention.js"

export interface ModelPolicy {
  readonly counts: Partial<Record<"last" | "hourly" | "daily" | "weekly" | "monthly" | "yearly", number>>
  readonly within?: { readonly years: number; readonly months: number; readonly days: number; readonly hours: number }
}

const DAY = 86_400_000

/** ISO week as [year, week]: week 1 holds the year's first Thursday, i.e. January 4th. */
const isoWeekKey = (t: Date): string => {
  const midnight = Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate())
  const mondayOfWeek1 = (year: number) => {
    const jan4 = Date.UTC(year, 0, 4)
    return jan4 - ((new Date(jan4).getUTCDay() + 6) % 7) * DAY
  }
  let year = t.getUTCFullYear() + 1
  while (mondayOfWeek1(year) > midnight) year--
  return `${year}-W${Math.floor((midnight - mondayOfWeek1(year)) / (7 * DAY)) + 1}`
}

const keyers: Record<keyof ModelPolicy["counts"], (t: Date, id: string) => string> = {
  last: (_, id) => id,
  hourly: (t) => t.toISOString().slice(0, 13),
  daily: (t) => t.toISOString().slice(0, 10),
  weekly: isoWeekKey,
  monthly: (t) => t.toISOString().slice(0, 7),
  yearly: (t) => t.toISOString().slice(0, 4)
}

/** The instant `d` before `t`: months counted on a year*12+month axis, then days, then hours. */
const minus = (t: Date, d: NonNullable<ModelPolicy["within"]>) => {
  const monthIndex = t.getUTCFullYear() * 12 + t.getUTCMonth() - d.years * 12 - d.months
  const firstOfMonth = Date.UTC(Math.floor(monthIndex / 12), ((monthIndex % 12) + 12) % 12, 1)
  const timeOfDay = t.getTime() - Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate())
  return firstOfMonth + (t.getUTCDate() - 1 - d.days) * DAY + timeOfDay - d.hours * 3_600_000
}

/** The ids the rules keep among one volume's restore points. */
export const modelKept = (points: ReadonlyArray<{ readonly id: string; readonly created_at: Date }>, policy: ModelPolicy, now: Date) => {
  const kept = new Set<string>()
  if (points.length === 0) return kept
  const order = [...points].sort((a, b) => b.created_at.getTime() - a.created_at.getTime() || b.id.localeCompare(a.id))
  for (const [rule, n] of Object.entries(policy.counts) as Array<[keyof ModelPolicy["counts"], number]>) {
    if (n === 0) continue
    const newestOfPeriod = new Map<string, string>()
    for (const b of order) {
      const key = keyers[rule](b.created_at, b.id)
      if (!newestOfPeriod.has(key)) newestOfPeriod.set(key, b.id)
    }
    const reps = [...newestOfPeriod.values()]
    for (const id of n === -1 ? reps : reps.slice(0, n)) kept.add(id)
    if (n === -1 || reps.length < n) kept.add(order.at(-1)!.id)
  }
  const w = policy.within
  if (w !== undefined && w.years + w.months + w.days + w.hours > 0) {
    const past = order.filter((b) => b.created_at.getTime() < now.getTime())
    const since = past.length === 0 ? -Infinity : minus(past[0]!.created_at, w)
    for (const b of order) if (b.created_at.getTime() > since) kept.add(b.id)
  }
  return kept
}

/** The ids a correct prune deletes from `records`. */
export const modelDeleted = (records: ReadonlyArray<BackupRecord>, policy: ModelPolicy, now: Date): Set<string> => {
  const live = records.filter((r) => r.status !== "deleted")
  const isPoint = (r: BackupRecord) => r.status === "available" || r.status === "restoring"
  const decidable = (r: BackupRecord) => isPoint(r) || r.status === "deleting" || r.status === "error_deleting"
  const stay = new Set<string>()
  for (const volume of new Set(live.map((r) => r.volume_id))) {
    for (const id of modelKept(live.filter((r) => r.volume_id === volume && isPoint(r)), policy, now)) stay.add(id)
  }
  for (const r of live) if (!decidable(r)) stay.add(r.id)
  const parentOf = new Map(live.map((r) => [r.id, r.parent_id]))
  for (const id of [...stay]) {
    for (let p = parentOf.get(id) ?? null; p !== null && parentOf.has(p) && !stay.has(p); p = parentOf.get(p) ?? null) stay.add(p)
  }
  return new Set(live.filter((r) => !stay.has(r.id)).map((r) => r.id))
}



/** Gaps between backups from minutes to weeks, so every period rule meets both crowded and empty periods. */
const gapMinutes = fc.oneof(fc.integer({ min: 1, max: 90 }), fc.integer({ min: 60, max: 48 * 60 }), fc.integer({ min: 1440, max: 40 * 1440 }))

/** A history: per volume, backups in time order, each a full or an incremental of an earlier one of its volume. */
export const historiesWith = (statuses: ReadonlyArray<BackupStatus>, maxPerVolume = 14) =>
  fc
    .array(
      fc.array(fc.record({ gap: gapMinutes, parent: fc.option(fc.nat(), { freq: 3 }), status: fc.constantFrom(...statuses) }), { minLength: 1, maxLength: maxPerVolume }),
      { minLength: 1, maxLength: 3 }
    )
    .map((volumes) =>
      volumes.flatMap((steps, v) => {
        let time = Date.UTC(2023, 11, 20 + v)
        return steps.map((step, i) => {
          time += step.gap * 60_000
          return newBackupRecord({
            id: `v${v}-b${String(i).padStart(2, "0")}`,
            volume_size_bytes: 8192,
            created_at: new Date(time),
            volume_id: `vol${v}`,
            parent_id: i === 0 || step.parent === null ? null : `v${v}-b${String(step.parent % i).padStart(2, "0")}`,
            status: step.status
          })
        })
      })
    )

const count = fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 6 }))

export const policies = fc
  .record(
    {
      last: count,
      hourly: count,
      daily: count,
      weekly: count,
      monthly: count,
      yearly: count,
      within: fc.record({ years: fc.integer({ min: 0, max: 1 }), months: fc.integer({ min: 0, max: 3 }), days: fc.integer({ min: 0, max: 20 }), hours: fc.integer({ min: 0, max: 48 }) })
    },
    { requiredKeys: [] }
  )
  .filter((p) => !isEmptyPolicy(p))

/** The model's form of a policy. */
export const modelPolicy = (p: RetentionPolicy): ModelPolicy => {
  const { within, ...counts } = p
  return within === undefined ? { counts } : { counts, within }
}

/** Histories of every status prune meets. */
export const histories = historiesWith(["available", "available", "available", "available", "error", "deleting", "restoring"])
