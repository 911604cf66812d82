/**
 * `chunked-backup scan [--container NAME] [--dry-run]`: rebuilds lost
 * catalog records from the store. Made by commands.ts from its shared
 * pieces (handed in, as copyCommand.ts's are).
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Effect, Option } from "effect"
import { scan, scanProblems, type ScanEntry } from "../driver/scan.js"
import type { CommandKit } from "./commands.js"
import { described } from "./help.js"

const scanLine = (e: ScanEntry, dryRun: boolean) =>
  `${e.outcome === "imported" && dryRun ? "would import" : e.outcome}: ${e.backupId} (${e.container}/${e.prefix})${e.reason === undefined ? "" : `: ${e.reason}`}`

/** Progress on stderr for large stores: a line every PROGRESS_EVERY backups checked, and at the end. */
const PROGRESS_EVERY = 100

export const makeScanCommand = ({ withServices, print }: CommandKit) =>
  Command.make(
    "scan",
    {
      container: Options.text("container").pipe(Options.withDescription("scan only this container (default: every container of a posix store, the store's container for Swift and S3)"), Options.optional),
      dryRun: Options.boolean("dry-run").pipe(Options.withDescription("check and report only; create no record"))
    },
    (args) =>
      withServices(
        (options) =>
          Effect.gen(function* () {
            const report = yield* scan({
              ...Option.match(args.container, { onNone: () => ({}), onSome: (container) => ({ container }) }),
              dryRun: args.dryRun,
              onProgress: (checked, total) => {
                if (total >= PROGRESS_EVERY && (checked % PROGRESS_EVERY === 0 || checked === total)) process.stderr.write(`scan: ${checked} of ${total} backups checked\n`)
              }
            })
            const count = (outcome: ScanEntry["outcome"]) => report.entries.filter((e) => e.outcome === outcome).length
            const summary = `${args.dryRun ? "dry run: would import" : "imported"} ${count("imported")}, already in the catalog ${count("existing")}, broken ${count("invalid")}, orphaned ${count("orphan")} (${report.containers.length} container(s) scanned)`
            yield* print(options, report, [...report.entries.filter((e) => e.outcome !== "existing").map((e) => scanLine(e, args.dryRun)), summary].join("\n"))
            const problems = scanProblems(report)
            if (problems !== undefined) return yield* problems
          }),
        { create: !args.dryRun, emptyIfMissing: args.dryRun }
      )
  ).pipe(
    Command.withDescription(
      described(
        "rebuild lost catalog records from the store: every backup whose documents and objects check out gets an available record; broken backups and their incrementals are reported and left out (exit 17)",
        ["chunked-backup scan --dry-run", "chunked-backup --catalog new.sqlite scan", "chunked-backup --store 'swift+http://127.0.0.1:8080/auth/v1.0?container=volumebackups' --json scan --container volumebackups"]
      )
    )
  )
