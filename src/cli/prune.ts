/**
 * `chunked-backup prune`: the retention plan as a table, then each delete as
 * it happens. The policy and the deletes are src/driver/prune.ts's.
 */
import * as Options from "@effect/cli/Options"
import { Console, Effect, Option } from "effect"
import { InvalidRequest } from "../domain/errors.js"
import { cleanup } from "../driver/cleanup.js"
import type { LeaseOptions } from "../driver/lease.js"
import { prune, type PruneReport } from "../driver/prune.js"
import { COUNT_RULES, parseCalendarDuration, type CountRule, type PlanEntry, type RetentionPolicy } from "../driver/retention.js"
import type { GlobalOptions } from "./environment.js"
import { described } from "./help.js"
import { table, utcTime } from "./tables.js"

const keepCount = (rule: CountRule, what: string) =>
  Options.integer(`keep-${rule}`).pipe(Options.withDescription(`keep the ${what} (-1: all of them)`), Options.optional)

export const pruneOptions = {
  keepLast: keepCount("last", "N newest backups"),
  keepHourly: keepCount("hourly", "newest backup of each of the N newest hours that have one"),
  keepDaily: keepCount("daily", "newest backup of each of the N newest days that have one"),
  keepWeekly: keepCount("weekly", "newest backup of each of the N newest ISO weeks that have one"),
  keepMonthly: keepCount("monthly", "newest backup of each of the N newest months that have one"),
  keepYearly: keepCount("yearly", "newest backup of each of the N newest years that have one"),
  keepWithin: Options.text("keep-within").pipe(
    Options.withDescription("keep every backup made within this long (e.g. 1y2m3d4h) before the volume's newest backup"),
    Options.optional
  ),
  volumeId: Options.text("volume-id").pipe(Options.withDescription("only this volume's backups (default: every volume)"), Options.optional),
  dryRun: Options.boolean("dry-run").pipe(Options.withDescription("show the plan only; delete nothing"))
}

type PruneArgs = {
  readonly [K in keyof typeof pruneOptions]: (typeof pruneOptions)[K] extends Options.Options<infer A> ? A : never
}

const optionKey = (rule: CountRule) => `keep${rule[0]!.toUpperCase()}${rule.slice(1)}` as `keep${Capitalize<CountRule>}`

/** The policy the options give; a --keep-within that is not a duration is refused. */
const policyOf = (args: PruneArgs) =>
  Effect.gen(function* () {
    const counts = Object.fromEntries(COUNT_RULES.flatMap((rule) => Option.toArray(args[optionKey(rule)]).map((n) => [rule, n])))
    if (Option.isNone(args.keepWithin)) return counts as RetentionPolicy
    const within = parseCalendarDuration(args.keepWithin.value)
    if (typeof within === "string") return yield* new InvalidRequest({ reason: `--keep-within ${within}` })
    return { ...counts, within } as RetentionPolicy
  })

const short = (id: string) => id.slice(0, 8)

const decisionText = (entry: PlanEntry, dryRun: boolean): readonly [string, string] => {
  switch (entry.decision) {
    case "keep":
      return ["keep", entry.reasons.join(", ")]
    case "ancestor":
      return ["keep (ancestor)", `needed by ${entry.neededBy.map(short).join(", ")}`]
    case "remove":
      return [dryRun ? "would remove" : "remove", entry.reason]
    case "untouched":
      return ["leave", entry.reason]
  }
}

/** The plan as people read it: one row per backup, newest first per volume. */
export const planTable = (report: PruneReport) =>
  table(
    ["VOLUME", "BACKUP", "CREATED (UTC)", "STATUS", "DECISION", "REASON"],
    report.plan.entries.map((e) => [e.backup.volume_id, e.backup.id, utcTime(e.backup.created_at), e.backup.status, ...decisionText(e, report.dryRun)])
  )

const entryJson = (e: PlanEntry) => ({
  id: e.backup.id,
  volume_id: e.backup.volume_id,
  parent_id: e.backup.parent_id,
  created_at: e.backup.created_at.toISOString(),
  status: e.backup.status,
  decision: e.decision,
  ...(e.decision === "keep" ? { reasons: e.reasons } : {}),
  ...(e.decision === "ancestor" ? { needed_by: e.neededBy } : {}),
  ...(e.decision === "remove" || e.decision === "untouched" ? { reason: e.reason } : {})
})

const summaryLine = (report: PruneReport) => {
  const count = (decision: PlanEntry["decision"]) => report.plan.entries.filter((e) => e.decision === decision).length
  const kept = `kept ${count("keep") + count("ancestor")} (${count("ancestor")} only as ancestors), left ${count("untouched")}`
  return report.dryRun
    ? `dry run: would delete ${report.plan.deletionOrder.length}, ${kept}`
    : `deleted ${report.deleted.length}, ${kept}`
}

/** The prune command's program: settle dead processes' records, plan, print the plan, delete. */
export const runPrune = (args: PruneArgs, options: GlobalOptions & { readonly lease: LeaseOptions }) =>
  Effect.gen(function* () {
    const policy = yield* policyOf(args)
    // Deletes a killed prune left get finished here, so their parents can go too.
    if (!args.dryRun) yield* cleanup(options.lease)
    const say = (line: string) => (options.json ? Effect.void : Console.log(line))
    const dryRun = args.dryRun
    const report = yield* prune(policy, {
      ...options.lease,
      dryRun,
      ...Option.match(args.volumeId, { onNone: () => ({}), onSome: (volumeId) => ({ volumeId }) }),
      // The plan is printed before the first delete; then a line per delete as it finishes.
      onPlan: (plan) => say(plan.entries.length === 0 ? "no backups" : planTable({ plan, deleted: [], dryRun })),
      onDeleted: (result) => say(`deleted ${result.backupId} (${result.objectsDeleted} objects)`)
    })
    if (options.json) {
      yield* Console.log(JSON.stringify({ dry_run: dryRun, plan: report.plan.entries.map(entryJson), deleted: report.deleted }))
    } else {
      yield* Console.log(summaryLine(report))
    }
  })

export const pruneHelp = described(
  "delete the backups a keep policy (restic's forget rules, per volume) does not keep; a kept incremental keeps every backup it restores through; newest dependents are deleted first, so an interrupted prune leaves every remaining chain restorable",
  [
    "chunked-backup prune --keep-daily 7 --keep-weekly 4 --dry-run",
    "chunked-backup prune --keep-last 3 --volume-id 5d1c3a2e-0b5f-4f6e-9d3c-2a1b0c9d8e7f",
    "chunked-backup --json prune --keep-within 1m --keep-monthly -1"
  ]
)
