/**
 * Retention: which backups a keep policy keeps, with restic's `forget`
 * semantics (internal/restic/snapshot_policy.go), per volume, plus the rule
 * this format adds: a kept backup keeps every ancestor its restore needs.
 *
 * restic's rules, as applied here to the restore points of one volume,
 * newest first:
 * - `last N`: the N newest.
 * - `hourly/daily/weekly/monthly/yearly N`: walking newest to oldest, the
 *   first backup of each new hour/day/ISO week/month/year is kept until N
 *   such periods were kept; the oldest backup is kept too while a rule still
 *   has periods left (restic keeps the longest history it can).
 * - `-1` for any of them: every period, no limit.
 * - `within D` (e.g. 1y2m3d4h): every backup made after the newest one
 *   (not counting backups in the future) minus D, calendar arithmetic.
 * Periods are UTC (restic uses the snapshot's own zone; our records are UTC).
 * Equal times are ordered by id, so a plan never depends on listing order.
 * Pure: no I/O, `now` given.
 */
import type { BackupRecord, BackupStatus } from "../domain/record.js"

/** restic's Duration: calendar units, added the way Go's AddDate does (month overflow rolls into the next). */
export interface CalendarDuration {
  readonly years: number
  readonly months: number
  readonly days: number
  readonly hours: number
}

/** The counted rules, in restic's order; 0 or absent: the rule is off, -1: unlimited. */
export const COUNT_RULES = ["last", "hourly", "daily", "weekly", "monthly", "yearly"] as const
/** One of the counted keep rules. */
export type CountRule = (typeof COUNT_RULES)[number]

/** A keep policy: counts per rule (0 or absent: off, -1: unlimited) and a `within` duration. */
export type RetentionPolicy = { readonly [K in CountRule]?: number } & { readonly within?: CalendarDuration }

/** Why a rule kept a backup: the rule's name, e.g. "daily" or "within 1y2m". */
export type KeepReason = string

const DURATION_PART = /^(\d+)([ymdh])/
const UNIT_FIELD = { y: "years", m: "months", d: "days", h: "hours" } as const

/** Parses restic's `6y5m234d37h` (each unit at most once, none negative); a string says what is wrong. */
export const parseCalendarDuration = (text: string): CalendarDuration | string => {
  const fields = { years: 0, months: 0, days: 0, hours: 0 }
  const seen = new Set<string>()
  let rest = text.trim()
  if (rest === "") return "is empty; expected e.g. 1y2m3d4h"
  while (rest !== "") {
    const part = DURATION_PART.exec(rest)
    if (part === null) return `${JSON.stringify(text)} is not a duration like 1y2m3d4h (whole numbers, units y, m, d, h)`
    const unit = part[2] as keyof typeof UNIT_FIELD
    if (seen.has(unit)) return `${JSON.stringify(text)} gives the unit ${unit} twice`
    seen.add(unit)
    fields[UNIT_FIELD[unit]] = Number(part[1])
    rest = rest.slice(part[0].length)
  }
  return fields
}

/** A duration as restic writes it, e.g. 1y2m (zero: 0h). */
export const formatCalendarDuration = (d: CalendarDuration): string =>
  [[d.years, "y"], [d.months, "m"], [d.days, "d"], [d.hours, "h"]].filter(([n]) => n !== 0).map(([n, u]) => `${n}${u}`).join("") || "0h"

const isZero = (d: CalendarDuration) => d.years === 0 && d.months === 0 && d.days === 0 && d.hours === 0

/** True when no rule is set: such a policy would keep nothing, so prune refuses it. */
export const isEmptyPolicy = (policy: RetentionPolicy) =>
  COUNT_RULES.every((rule) => (policy[rule] ?? 0) === 0) && (policy.within === undefined || isZero(policy.within))

/** What is wrong with the policy's counts (restic allows -1 and up), or undefined. */
export const policyProblem = (policy: RetentionPolicy): string | undefined => {
  const bad = COUNT_RULES.find((rule) => {
    const n = policy[rule]
    return n !== undefined && (!Number.isInteger(n) || n < -1)
  })
  return bad === undefined ? undefined : `--keep-${bad} must be a whole number, -1 (unlimited) or more; got ${policy[bad]}`
}

/** `t` minus `d`, as Go's t.AddDate(-y, -m, -d).Add(-h hours) in UTC. */
export const before = (t: Date, d: CalendarDuration): Date =>
  new Date(
    Date.UTC(
      t.getUTCFullYear() - d.years,
      t.getUTCMonth() - d.months,
      t.getUTCDate() - d.days,
      t.getUTCHours(),
      t.getUTCMinutes(),
      t.getUTCSeconds(),
      t.getUTCMilliseconds()
    ) -
      d.hours * 3_600_000
  )

/** The ISO 8601 week of a UTC instant as year * 100 + week (the week's Thursday decides its year). */
export const isoWeek = (t: Date): number => {
  const day = (t.getUTCDay() + 6) % 7 // Monday 0
  const thursday = Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate() - day + 3)
  const year = new Date(thursday).getUTCFullYear()
  return year * 100 + Math.floor((thursday - Date.UTC(year, 0, 1)) / (7 * 86_400_000)) + 1
}

/** The period a backup falls in, per counted rule; `last` gives each backup its own. */
const periodOf: Record<CountRule, (t: Date, index: number) => number> = {
  last: (_, index) => index,
  hourly: (t) => ((t.getUTCFullYear() * 100 + t.getUTCMonth() + 1) * 100 + t.getUTCDate()) * 100 + t.getUTCHours(),
  daily: (t) => (t.getUTCFullYear() * 100 + t.getUTCMonth() + 1) * 100 + t.getUTCDate(),
  weekly: isoWeek,
  monthly: (t) => t.getUTCFullYear() * 100 + t.getUTCMonth() + 1,
  yearly: (t) => t.getUTCFullYear()
}

/** Newest first; equal times by id. */
export const newestFirst = <T extends { readonly id: string; readonly created_at: Date }>(items: ReadonlyArray<T>): Array<T> =>
  [...items].sort((a, b) => b.created_at.getTime() - a.created_at.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))

/**
 * The backups of one group (a volume's restore points) that the policy's
 * rules keep, each with the rules that keep it. `now`: backups after it do
 * not anchor `within` (restic's guard against clocks set wrong).
 */
export const applyPolicy = (
  backups: ReadonlyArray<{ readonly id: string; readonly created_at: Date }>,
  policy: RetentionPolicy,
  now: Date
): Map<string, ReadonlyArray<KeepReason>> => {
  const kept = new Map<string, ReadonlyArray<KeepReason>>()
  const list = newestFirst(backups)
  const newest = list.map((b) => b.created_at).find((t) => t.getTime() < now.getTime())
  // With every backup in the future, restic measures from year 1: all are within.
  const withinSince =
    policy.within === undefined || isZero(policy.within) ? undefined : newest === undefined ? -Infinity : before(newest, policy.within).getTime()
  const left = new Map(COUNT_RULES.map((rule) => [rule, policy[rule] ?? 0]))
  const lastPeriod = new Map<CountRule, number | undefined>()
  list.forEach((b, index) => {
    const reasons: Array<KeepReason> = []
    if (withinSince !== undefined && b.created_at.getTime() > withinSince) reasons.push(`within ${formatCalendarDuration(policy.within!)}`)
    for (const rule of COUNT_RULES) {
      const count = left.get(rule)!
      if (count === 0) continue
      const period = periodOf[rule](b.created_at, index)
      if (period !== lastPeriod.get(rule) || index === list.length - 1) {
        lastPeriod.set(rule, period)
        if (count > 0) left.set(rule, count - 1)
        reasons.push(rule)
      }
    }
    if (reasons.length > 0) kept.set(b.id, reasons)
  })
  return kept
}

/**
 * One backup's fate:
 * - keep: a rule keeps it (`reasons`);
 * - ancestor: no rule keeps it, but the backups in `neededBy` restore through it;
 * - remove: no rule keeps it and nothing needs it (or it is an unfinished delete);
 * - untouched: not a restore point prune decides on (a backup running or
 *   failed); it keeps its ancestors, as delete would refuse them.
 */
export type Decision =
  | { readonly decision: "keep"; readonly reasons: ReadonlyArray<KeepReason> }
  | { readonly decision: "ancestor"; readonly neededBy: ReadonlyArray<string> }
  | { readonly decision: "remove"; readonly reason: string }
  | { readonly decision: "untouched"; readonly reason: string }

/** A backup with its decision. */
export type PlanEntry = Decision & { readonly backup: BackupRecord }

/** The decision on every backup and the order to delete the removed ones in. */
export interface RetentionPlan {
  /** every backup, grouped by volume (volumes by id), newest first within one */
  readonly entries: ReadonlyArray<PlanEntry>
  /** the ids to delete, each after every backup that depends on it: newest dependents first */
  readonly deletionOrder: ReadonlyArray<string>
}

/** What the policy decides on: backups a restore can use. */
const RESTORE_POINTS: ReadonlyArray<BackupStatus> = ["available", "restoring"]
/** Deletes that did not finish: prune finishes them. */
const UNFINISHED_DELETES: ReadonlyArray<BackupStatus> = ["deleting", "error_deleting"]

/** How many parents a backup has before its full backup (cycles and missing parents end the walk). */
const depthOf = (record: BackupRecord, byId: ReadonlyMap<string, BackupRecord>) => {
  const seen = new Set<string>([record.id])
  let depth = 0
  for (let parent = record.parent_id; parent !== null && !seen.has(parent); depth++) {
    seen.add(parent)
    parent = byId.get(parent)?.parent_id ?? null
  }
  return depth
}

/** The plan for all `records` (any volumes; `deleted` ones are left out). */
export const planRetention = (records: ReadonlyArray<BackupRecord>, policy: RetentionPolicy, now: Date): RetentionPlan => {
  const live = records.filter((r) => r.status !== "deleted")
  const byId = new Map(live.map((r) => [r.id, r]))
  const volumes = [...new Set(live.map((r) => r.volume_id))].sort()
  const kept = new Map<string, ReadonlyArray<KeepReason>>()
  for (const volume of volumes) {
    const points = live.filter((r) => r.volume_id === volume && RESTORE_POINTS.includes(r.status))
    for (const [id, reasons] of applyPolicy(points, policy, now)) kept.set(id, reasons)
  }
  // Every backup that stays pins its chain.
  const neededBy = new Map<string, Array<string>>()
  const staying = live.filter((r) => kept.has(r.id) || !(RESTORE_POINTS.includes(r.status) || UNFINISHED_DELETES.includes(r.status)))
  for (const record of staying) {
    const seen = new Set<string>([record.id])
    for (let parent = record.parent_id; parent !== null && byId.has(parent) && !seen.has(parent); parent = byId.get(parent)!.parent_id) {
      seen.add(parent)
      neededBy.set(parent, [...(neededBy.get(parent) ?? []), record.id])
    }
  }
  const decide = (r: BackupRecord): Decision => {
    const reasons = kept.get(r.id)
    if (reasons !== undefined) return { decision: "keep", reasons }
    const dependents = neededBy.get(r.id)
    if (dependents !== undefined) return { decision: "ancestor", neededBy: dependents }
    if (UNFINISHED_DELETES.includes(r.status)) return { decision: "remove", reason: `unfinished delete (${r.status})` }
    if (RESTORE_POINTS.includes(r.status)) return { decision: "remove", reason: "no rule keeps it" }
    return { decision: "untouched", reason: `${r.status}: not a restore point` }
  }
  const entries = volumes.flatMap((volume) => newestFirst(live.filter((r) => r.volume_id === volume)).map((backup) => ({ backup, ...decide(backup) })))
  const removed = entries.filter((e) => e.decision === "remove").map((e) => e.backup)
  // A child is deeper than its parent: deepest first deletes dependents before what they depend on.
  const deletionOrder = removed
    .map((r) => ({ r, depth: depthOf(r, byId) }))
    .sort((a, b) => b.depth - a.depth || b.r.created_at.getTime() - a.r.created_at.getTime() || (a.r.id < b.r.id ? 1 : -1))
    .map(({ r }) => r.id)
  return { entries, deletionOrder }
}
