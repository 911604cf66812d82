/**
 * `chunked-backup copy <backup-id> --to-repo DIR | --to-store URL --to-catalog PATH-OR-URL`:
 * the source is what the global options name, the destination is built the
 * same way from the --to-* options. The command is made by commands.ts from
 * its shared pieces (handed in, so this module imports nothing of it at run
 * time).
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Effect, Option } from "effect"
import { InvalidRequest } from "../domain/errors.js"
import { copy, type CopiedBackup, type CopyReport } from "../driver/copy.js"
import { layerCopyDestination } from "../driver/copyDestination.js"
import type { CommandKit } from "./commands.js"
import { servicesFor, type GlobalOptions } from "./environment.js"
import { described } from "./help.js"
import { resolveBackupId } from "./backupId.js"
import { reportInterruption } from "./interruption.js"
import { formatBytes, makeProgressView } from "./progressView.js"

interface Destination {
  readonly toRepo: Option.Option<string>
  readonly toStore: Option.Option<string>
  readonly toCatalog: Option.Option<string>
}

/** The destination's store and catalog, named as --repo/--store/--catalog name the source's. */
const destinationLayer = (to: Destination, options: GlobalOptions) =>
  Effect.gen(function* () {
    if (Option.isNone(to.toRepo) && Option.isNone(to.toStore)) {
      return yield* new InvalidRequest({ reason: "name the destination: --to-repo DIR, or --to-store URL with --to-catalog PATH-OR-URL" })
    }
    if (Option.isNone(to.toRepo) && Option.isNone(to.toCatalog)) {
      return yield* new InvalidRequest({ reason: "--to-store needs --to-catalog (a SQLite file or postgres://USER@HOST:PORT/DB), or --to-repo for the catalog's place" })
    }
    const services = yield* servicesFor(
      { ...options, repo: Option.getOrElse(to.toRepo, () => "."), store: to.toStore, catalog: to.toCatalog },
      { create: true }
    )
    return layerCopyDestination(services)
  })

const backupLine = (b: CopiedBackup) =>
  b.outcome === "present"
    ? `present ${b.backupId}: already available at the destination`
    : `copied  ${b.backupId}: ${b.objectsCopied} object${b.objectsCopied === 1 ? "" : "s"} sent (${formatBytes(b.bytesCopied)}), ${b.objectsSkipped} already there`

const reportText = (report: CopyReport) => {
  const copied = report.backups.filter((b) => b.outcome === "copied").length
  if (copied === 0) return `backup ${report.backupId} and its ${report.backups.length - 1} ancestor(s) are already available at the destination: nothing was copied`
  const summary =
    `copied ${copied} backup(s), ${report.backups.length - copied} already there: ` +
    `${report.objectsCopied} objects sent (${formatBytes(report.bytesCopied)}), ${report.objectsSkipped} skipped as already present`
  return [...report.backups.map(backupLine), summary].join("\n")
}

/** The `copy` command. */
export const makeCopyCommand = (kit: CommandKit) =>
  Command.make(
    "copy",
    {
      backupId: kit.backupIdArg,
      toRepo: Options.text("to-repo").pipe(Options.withDescription("destination repository directory: its posix store and SQLite catalog, as --repo makes them"), Options.optional),
      toStore: Options.text("to-store").pipe(Options.withDescription("destination object store URL, as --store takes it"), Options.optional),
      toCatalog: Options.text("to-catalog").pipe(Options.withDescription("destination catalog, as --catalog takes it: a SQLite file or postgres://USER@HOST:PORT/DB"), Options.optional),
      concurrency: Options.integer("concurrency").pipe(Options.withDescription("objects copied at once (default: the source store's)"), Options.optional)
    },
    (args) =>
      kit.withCodecServices((options) =>
        Effect.gen(function* () {
          const backupId = yield* resolveBackupId(args.backupId)
          const destination = yield* destinationLayer(args, options)
          const view = makeProgressView({ json: options.json })
          const report = yield* copy(backupId, {
            ...view.options,
            ...options.lease,
            ...Option.match(args.concurrency, { onNone: () => ({}), onSome: (concurrency) => ({ concurrency }) })
          }).pipe(
            Effect.provide(destination),
            reportInterruption(backupId, () => `copy of ${backupId} interrupted: what it sent stays at the destination, not available; run copy again to resume`)
          )
          const summary = yield* kit.summarize(view, options)
          yield* kit.print(options, { ...report, ...summary }, reportText(report))
        })
      )
  ).pipe(
    Command.withDescription(
      described("copy a backup and every ancestor the destination lacks to another store and catalog, object for object, md5-checked on the way; resumable", [
        "chunked-backup copy 7dc7af47 --to-repo /mnt/offsite/repo",
        "chunked-backup copy 7dc7af47 --to-store 'swift+http://127.0.0.1:8080/auth/v1.0?container=volumebackups' --to-catalog offsite.sqlite",
        "chunked-backup --store 's3://volumebackups?endpoint=https://s3.example.com' copy 7dc7af47 --to-repo ./local-repo --concurrency 8"
      ])
    )
  )
