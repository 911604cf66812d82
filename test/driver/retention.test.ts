/**
 * The retention plan: restic's documented examples worked by hand, the
 * edges of its rules (the oldest backup, -1, backups in the future, calendar
 * arithmetic), the chain rule, and a property against an independent model
 * (test/support/retentionModel.ts) over random histories and policies.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck as fc } from "effect"
import { newBackupRecord, type BackupRecord } from "../../src/index.js"
import {
  applyPolicy,
  before,
  isEmptyPolicy,
  isoWeek,
  parseCalendarDuration,
  planRetention,
  policyProblem,
  type RetentionPolicy
} from "../../src/driver/retention.js"
import { histories, modelDeleted, modelPolicy, policies } from "../support/retentionModel.js"

const at = (iso: string) => new Date(`${iso}Z`)
const NOW = at("2030-01-01T00:00:00")

const record = (id: string, created: Date, fields: Partial<BackupRecord> = {}): BackupRecord =>
  newBackupRecord({ id, volume_id: "vol", volume_size_bytes: 4096, status: "available", created_at: created, ...fields })

/** restic's doc example: one backup every Sunday at 11:00 for 12 weeks, 2019-09-01 to 2019-11-17. */
const sundays = Array.from({ length: 12 }, (_, i) => ({ id: `s${String(i).padStart(2, "0")}`, created_at: new Date(Date.UTC(2019, 8, 1 + 7 * i, 11)) }))

const keptIds = (backups: ReadonlyArray<{ id: string; created_at: Date }>, policy: RetentionPolicy, now = NOW) =>
  [...applyPolicy(backups, policy, now).keys()].sort()

describe("retention rules (restic's forget)", () => {
  it("--keep-daily 4 over 12 Sundays keeps the last four (restic's documentation)", () => {
    expect(keptIds(sundays, { daily: 4 })).toEqual(["s08", "s09", "s10", "s11"])
    expect(applyPolicy(sundays, { daily: 4 }, NOW).get("s11")).toEqual(["daily"])
  })

  it("more periods asked for than there are: the oldest is kept too, and -1 keeps every period and the oldest", () => {
    // Two backups on each of three days: daily 5 keeps each day's newest, and the very oldest.
    const twice = [1, 2, 3].flatMap((d) => [
      { id: `d${d}-morning`, created_at: new Date(Date.UTC(2024, 0, d, 8)) },
      { id: `d${d}-evening`, created_at: new Date(Date.UTC(2024, 0, d, 20)) }
    ])
    expect(keptIds(twice, { daily: 5 })).toEqual(["d1-evening", "d1-morning", "d2-evening", "d3-evening"])
    expect(keptIds(twice, { daily: -1 })).toEqual(["d1-evening", "d1-morning", "d2-evening", "d3-evening"])
    // Exactly as many periods as asked for: no extra.
    expect(keptIds(twice, { daily: 3 })).toEqual(["d1-evening", "d2-evening", "d3-evening"])
    expect(keptIds(twice, { last: 2 })).toEqual(["d3-evening", "d3-morning"])
    expect(keptIds(twice, { last: -1 })).toHaveLength(6)
  })

  it("daily backups for three years with --keep-daily 7 --keep-weekly 5 --keep-monthly 12 --keep-yearly 75 (restic's documentation, scaled down)", () => {
    // 2021-01-01 .. 2023-12-31, one a day at noon; the newest is Sunday 2023-12-31.
    const days = Array.from({ length: 1095 }, (_, i) => ({ id: `day${String(i).padStart(4, "0")}`, created_at: new Date(Date.UTC(2021, 0, 1 + i, 12)) }))
    const kept = applyPolicy(days, { daily: 7, weekly: 5, monthly: 12, yearly: 75 }, NOW)
    const byRule = (rule: string) => [...kept.entries()].filter(([, r]) => r.includes(rule)).map(([id]) => days.find((d) => d.id === id)!.created_at.toISOString().slice(0, 10)).sort()
    expect(byRule("daily")).toEqual(["2023-12-25", "2023-12-26", "2023-12-27", "2023-12-28", "2023-12-29", "2023-12-30", "2023-12-31"])
    // Sundays, the week's last day: the 7 dailies already hold one.
    expect(byRule("weekly")).toEqual(["2023-12-03", "2023-12-10", "2023-12-17", "2023-12-24", "2023-12-31"])
    expect(byRule("monthly")).toEqual(["2023-01-31", "2023-02-28", "2023-03-31", "2023-04-30", "2023-05-31", "2023-06-30", "2023-07-31", "2023-08-31", "2023-09-30", "2023-10-31", "2023-11-30", "2023-12-31"])
    // Only three years exist of the 75: each year's last day, and the oldest backup.
    expect(byRule("yearly")).toEqual(["2021-01-01", "2021-12-31", "2022-12-31", "2023-12-31"])
    // 7 daily + 4 more weekly + 11 more monthly + 3 more yearly (2021-01-01, 2021-12-31, 2022-12-31).
    expect(kept.size).toBe(7 + 4 + 11 + 3)
  })

  it("--keep-within counts back from the newest backup, not from now, with calendar months", () => {
    const backups = [
      { id: "a", created_at: at("2024-01-31T12:00:00") },
      { id: "b", created_at: at("2024-03-01T12:00:00") },
      { id: "c", created_at: at("2024-03-02T11:30:00") },
      { id: "d", created_at: at("2024-03-31T12:00:00") }
    ]
    // 2024-03-31 minus 1 month is February 31st, which Go (and we) roll to March 2nd (a leap year): c, at 11:30, falls just before it.
    expect(keptIds(backups, { within: { years: 0, months: 1, days: 0, hours: 0 } })).toEqual(["d"])
    expect(keptIds(backups, { within: { years: 0, months: 1, days: 0, hours: 1 } })).toEqual(["c", "d"])
    expect(keptIds(backups, { within: { years: 0, months: 2, days: 0, hours: 0 } })).toEqual(["b", "c", "d"])
    expect(before(at("2024-03-31T12:00:00"), { years: 0, months: 1, days: 0, hours: 0 })).toEqual(at("2024-03-02T12:00:00"))
    // A backup dated in the future does not anchor the window (restic's rule), but is kept by it.
    const future = [...backups, { id: "z", created_at: at("2099-01-01T00:00:00") }]
    expect(keptIds(future, { within: { years: 0, months: 0, days: 1, hours: 0 } }, at("2025-01-01T00:00:00"))).toEqual(["d", "z"])
  })

  it("durations parse as restic's (1y2m3d4h) and bad ones are refused with the reason", () => {
    expect(parseCalendarDuration("1y2m3d4h")).toEqual({ years: 1, months: 2, days: 3, hours: 4 })
    expect(parseCalendarDuration("36h")).toEqual({ years: 0, months: 0, days: 0, hours: 36 })
    expect(parseCalendarDuration("7")).toMatch(/not a duration/)
    expect(parseCalendarDuration("1w")).toMatch(/not a duration/)
    expect(parseCalendarDuration("-1d")).toMatch(/not a duration/)
    expect(parseCalendarDuration("1d2d")).toMatch(/unit d twice/)
    expect(parseCalendarDuration("")).toMatch(/empty/)
  })

  it("an empty policy and counts below -1 are told apart from real ones", () => {
    expect(isEmptyPolicy({})).toBe(true)
    expect(isEmptyPolicy({ last: 0, within: { years: 0, months: 0, days: 0, hours: 0 } })).toBe(true)
    expect(isEmptyPolicy({ yearly: -1 })).toBe(false)
    expect(policyProblem({ daily: -2 })).toMatch(/--keep-daily/)
    expect(policyProblem({ daily: -1, last: 3 })).toBeUndefined()
  })

  it("ISO weeks: the week of January 1st can belong to the year before or after", () => {
    expect(isoWeek(at("2021-01-03T00:00:00"))).toBe(202053)
    expect(isoWeek(at("2021-01-04T00:00:00"))).toBe(202101)
    expect(isoWeek(at("2024-12-30T00:00:00"))).toBe(202501)
    expect(isoWeek(at("2026-12-31T23:59:59"))).toBe(202653)
  })
})

describe("the chain rule", () => {
  it("a kept incremental keeps its parents; removals go newest dependent first; other volumes and statuses are decided apart", () => {
    const t = (h: number) => new Date(Date.UTC(2024, 5, 1, h))
    const records = [
      record("full1", t(0)),
      record("inc1a", t(1), { parent_id: "full1" }),
      record("inc1b", t(2), { parent_id: "inc1a" }),
      record("full2", t(3)),
      record("inc2a", t(4), { parent_id: "full2" }),
      record("inc2b", t(5), { parent_id: "inc2a" }),
      record("full3", t(6)),
      record("failed", t(7), { parent_id: "full3", status: "error" }),
      record("gone", t(8), { status: "deleted" }),
      record("other", t(1), { volume_id: "vol2" })
    ]
    const plan = planRetention(records, { last: 1 }, NOW)
    const decisions = Object.fromEntries(plan.entries.map((e) => [e.backup.id, e.decision]))
    expect(decisions).toEqual({
      full1: "remove",
      inc1a: "remove",
      inc1b: "remove",
      full2: "remove",
      inc2a: "remove",
      inc2b: "remove",
      full3: "keep",
      failed: "untouched",
      other: "keep"
    })
    expect(plan.deletionOrder).toEqual(["inc2b", "inc1b", "inc2a", "inc1a", "full2", "full1"])
    const keepTwo = planRetention(records, { last: 2 }, NOW)
    const ancestors = keepTwo.entries.filter((e) => e.decision === "ancestor").map((e) => [e.backup.id, e.decision === "ancestor" ? e.neededBy : []])
    // last 2 of vol: full3 and inc2b; inc2b restores through inc2a and full2.
    expect(ancestors).toEqual([["inc2a", ["inc2b"]], ["full2", ["inc2b"]]])
    expect(keepTwo.deletionOrder).toEqual(["inc1b", "inc1a", "full1"])
  })

  it("a failed incremental pins its parent; an unfinished delete is finished and pins nothing", () => {
    const t = (h: number) => new Date(Date.UTC(2024, 5, 1, h))
    const records = [
      record("full", t(0)),
      record("failed", t(1), { parent_id: "full", status: "error" }),
      record("full2", t(2)),
      record("halfdeleted", t(3), { parent_id: "full2", status: "deleting" }),
      record("newest", t(4))
    ]
    const plan = planRetention(records, { last: 1 }, NOW)
    const byId = Object.fromEntries(plan.entries.map((e) => [e.backup.id, e]))
    expect(byId["full"]).toMatchObject({ decision: "ancestor", neededBy: ["failed"] })
    expect(byId["halfdeleted"]).toMatchObject({ decision: "remove", reason: "unfinished delete (deleting)" })
    expect(plan.deletionOrder).toEqual(["halfdeleted", "full2"])
  })
})

describe("retention plan properties", () => {
  it.prop("the plan deletes exactly what the model says, and never a backup a staying one restores through", [histories, policies], ([records, policy]) => {
    const plan = planRetention(records, policy, NOW)
    expect(new Set(plan.deletionOrder)).toEqual(modelDeleted(records, modelPolicy(policy), NOW))
    // Chain rule, checked directly: no staying record's parent is deleted, and each delete comes after its dependents'.
    const deleted = new Set(plan.deletionOrder)
    for (const r of records) {
      if (r.status !== "deleted" && !deleted.has(r.id) && r.parent_id !== null) expect(deleted.has(r.parent_id)).toBe(false)
    }
    plan.deletionOrder.forEach((id, i) => {
      const parent = records.find((r) => r.id === id)!.parent_id
      if (parent !== null && deleted.has(parent)) expect(plan.deletionOrder.indexOf(parent)).toBeGreaterThan(i)
    })
  }, { fastCheck: { numRuns: 500 } })

  it.effect("a policy with any rule keeps the newest restore point of every volume", () =>
    Effect.sync(() =>
      fc.assert(
        fc.property(histories, policies, (records, policy) => {
          const plan = planRetention(records, policy, NOW)
          for (const volume of new Set(records.map((r) => r.volume_id))) {
            const newest = records.filter((r) => r.volume_id === volume && (r.status === "available" || r.status === "restoring")).sort((a, b) => b.created_at.getTime() - a.created_at.getTime())[0]
            if (newest !== undefined) expect(plan.entries.find((e) => e.backup.id === newest.id)?.decision).toBe("keep")
          }
        }),
        { numRuns: 300 }
      )
    )
  )
})
