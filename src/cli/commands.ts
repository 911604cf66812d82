/**
 * The command line: parse, pick layers, show progress. No backup logic here;
 * every command calls a driver program or the catalog.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import type * as FileSystem from "@effect/platform/FileSystem"
import { Config, Console, Duration, Effect, Layer, Option } from "effect"
import { randomUUID } from "node:crypto"
import { BackupCatalog, dependentsOf } from "../catalog/BackupCatalog.js"
import { type CodecPool, layerCodecPool } from "../codec/pool.js"
import { InvalidRequest, VerificationFailed } from "../domain/errors.js"
import { volumeArgument } from "./volumeArg.js"
import type { BackupRecord } from "../domain/record.js"
import { backup } from "../driver/backup.js"
import { cleanup, type CleanupAction } from "../driver/cleanup.js"
import type { LeaseOptions } from "../driver/lease.js"
import { verify } from "../driver/verify.js"
import { deleteBackup } from "../driver/delete.js"
import { metadataName } from "../driver/objects.js"
import { exportRecord, importRecord } from "../format/record.js"
import { ObjectStore } from "../store/ObjectStore.js"
import { servicesFor, type GlobalOptions } from "./environment.js"
import { formatBytes, makeProgressView, summaryOf, type ProgressView } from "./progressView.js"
import { resolveBackupId } from "./backupId.js"
import { described, STORE_SCHEMES } from "./help.js"
import { afterInterruptedBackup, reportInterruption } from "./interruption.js"
import { cinderTable, table, utcTime } from "./tables.js"
import { pruneHelp, pruneOptions, runPrune } from "./prune.js"
import { printTree, storedFields } from "./tree.js"
import { storedSizeOf } from "../driver/storedSize.js"
import { makeCopyCommand } from "./copyCommand.js"
import { makeRestoreCommand } from "./restoreCommand.js"
import { makeScanCommand } from "./scanCommand.js"

const root = Command.make("chunked-backup", {
  repo: Options.text("repo").pipe(
    Options.withDescription("repository directory holding the posix store and the catalog"),
    Options.withFallbackConfig(Config.string("CHUNKED_BACKUP_REPO")),
    Options.withDefault("./chunked-backup-repo")
  ),
  store: Options.text("store").pipe(
    Options.withDescription(`object store URL: ${STORE_SCHEMES}`),
    Options.optional
  ),
  catalog: Options.text("catalog").pipe(
    Options.withDescription("catalog: a SQLite file (default <repo>/catalog.sqlite) or postgres://USER@HOST:PORT/DB, shared by many hosts (password in PGPASSWORD or .pgpass)"),
    Options.optional
  ),
  json: Options.boolean("json").pipe(Options.withDescription("machine-readable output: one JSON object on stdout")),
  verbose: Options.boolean("verbose").pipe(Options.withDescription("show error causes and stack traces"))
})

type Program<A, E, R = never> = (
  options: GlobalOptions & { readonly lease: LeaseOptions }
) => Effect.Effect<A, E, BackupCatalog | ObjectStore | FileSystem.FileSystem | R>

/**
 * Runs `program` on the services the global options name. Only commands that
 * add backups (`create`) make a missing repository; the others say it is not there.
 */
export const withServices = <A, E>(program: Program<A, E>, { create = false, emptyIfMissing = false }: { readonly create?: boolean; readonly emptyIfMissing?: boolean } = {}) =>
  Effect.gen(function* () {
    const options = yield* root
    // Tests shorten leases to see a killed process's record cleaned up quickly.
    const leaseSeconds = yield* Config.integer("CHUNKED_BACKUP_LEASE_SECONDS").pipe(Config.withDefault(30))
    const layer = yield* servicesFor(options, { create, emptyIfMissing })
    return yield* Effect.provide(program({ ...options, lease: { leaseDuration: Duration.seconds(leaseSeconds) } }), layer)
  })

/** For commands that compress or hash: the codec pool too, its workers loading while the services open. */
export const withCodecServices = <A, E>(program: Program<A, E, CodecPool>, how: { readonly create?: boolean } = {}) =>
  Effect.scoped(
    Effect.flatMap(Layer.build(layerCodecPool()), (codec) => withServices((options) => Effect.provide(program(options), codec), how))
  )

const recordJson = (record: BackupRecord) => ({
  ...record,
  created_at: record.created_at.toISOString(),
  updated_at: record.updated_at?.toISOString() ?? null
})

export const print = (options: GlobalOptions, json: unknown, text: string) =>
  Console.log(options.json ? JSON.stringify(json) : text)

/**
 * The end of a backup, restore or verify, like restic's: a line on stderr
 * (bytes, objects, stored after compression, time, throughput) for people,
 * `summary` fields of the result for --json.
 */
export const summarize = (view: ProgressView, options: GlobalOptions) =>
  Effect.sync(() => {
    const last = view.last()
    if (last === undefined || !last.done) return {}
    const { fields, line } = summaryOf(last)
    if (!options.json) process.stderr.write(`${line}\n`)
    return { summary: fields }
  })

const newestAvailable = (volumeId: string) =>
  Effect.flatMap(BackupCatalog, (catalog) => catalog.list({ volumeId })).pipe(
    Effect.map((records) => records.filter((r) => r.status === "available").at(-1)),
    Effect.flatMap((record) =>
      record === undefined
        ? Effect.fail(new InvalidRequest({ reason: `no available backup of volume ${volumeId} to base an incremental on; make a full backup first` }))
        : Effect.succeed(record.id)
    )
  )

const backupCommand = Command.make(
  "backup",
  {
    // Not Args.file: it accepts regular files only, and a block device is a volume too.
    volume: Args.text({ name: "volume" }).pipe(
      Args.withDescription("image file or block device to back up, an NBD URI (nbd://host[:port]/export, nbd+unix:///export?socket=PATH), or - for standard input (with --size and --volume-id)")
    ),
    volumeId: Options.text("volume-id").pipe(Options.withDescription("volume UUID (default: derived from the volume's path)"), Options.optional),
    size: Options.integer("size").pipe(Options.withDescription("with -: the volume's size in bytes; the bytes read must match it"), Options.optional),
    backupId: Options.text("backup-id").pipe(Options.withDescription("backup UUID (default: a new one)"), Options.optional),
    name: Options.text("name").pipe(Options.optional),
    description: Options.text("description").pipe(Options.optional),
    incremental: Options.boolean("incremental").pipe(Options.withDescription("incremental on the newest available backup of the volume")),
    parent: Options.text("parent").pipe(Options.withDescription("incremental on this backup"), Options.optional),
    compression: Options.text("compression").pipe(Options.withDescription("none, zlib (gzip), bz2 (bzip2) or zstd; default zlib"), Options.withDefault("zlib")),
    chunkSize: Options.integer("chunk-size").pipe(Options.withDescription("bytes per object; default 52428800 (50 MiB, Cinder's Swift and S3 default)"), Options.withDefault(52428800)),
    shaBlockSize: Options.integer("sha-block-size").pipe(Options.withDescription("change-tracking block size; default 32768"), Options.withDefault(32768)),
    container: Options.text("container").pipe(Options.withDescription("container (default: the store's)"), Options.optional),
    concurrency: Options.integer("concurrency").pipe(Options.withDescription("objects in flight (default: the store's)"), Options.optional),
    dirtyBitmap: Options.text("dirty-bitmap").pipe(
      Options.withDescription("with an NBD URI and --incremental/--parent: read only what this qemu dirty bitmap (started at the parent backup) marks as changed"),
      Options.optional
    )
  },
  (args) =>
    withCodecServices((options) =>
      Effect.gen(function* () {
        if (Option.isSome(args.dirtyBitmap) && !args.incremental && Option.isNone(args.parent)) {
          return yield* new InvalidRequest({ reason: "--dirty-bitmap is for an incremental backup (--incremental or --parent): a full backup reads every byte" })
        }
        const { volume, volumeId } = yield* volumeArgument(args.volume, args.size, args.volumeId, args.dirtyBitmap)
        if (args.incremental && Option.isSome(args.parent)) {
          return yield* new InvalidRequest({ reason: "use either --incremental or --parent, not both" })
        }
        // Records left behind by processes that died are settled before anything else.
        yield* cleanup(options.lease)
        const parentId = args.incremental ? yield* newestAvailable(volumeId) : Option.getOrNull(args.parent)
        const view = makeProgressView({ json: options.json })
        const backupId = Option.getOrElse(args.backupId, () => randomUUID())
        const record = yield* backup(
          {
            id: backupId,
            volume_id: volumeId,
            parent_id: parentId,
            display_name: Option.getOrNull(args.name),
            display_description: Option.getOrNull(args.description),
            container: Option.getOrNull(args.container),
            availability_zone: "nova"
          },
          volume,
          {
            compression: args.compression,
            chunkSize: args.chunkSize,
            shaBlockSize: args.shaBlockSize,
            ...view.options,
            ...options.lease,
            ...Option.match(args.concurrency, { onNone: () => ({}), onSome: (concurrency) => ({ concurrency }) })
          }
        ).pipe(reportInterruption(backupId, afterInterruptedBackup(backupId)))
        const summary = yield* summarize(view, options)
        yield* print(options, { ...recordJson(record), ...summary }, record.id)
      }).pipe(Effect.scoped),
      { create: true }
    )
).pipe(Command.withDescription(described("back up a volume (full, or incremental with --incremental/--parent)", ["chunked-backup backup disk.img --name nightly", "chunked-backup backup /dev/vdb --incremental --compression zstd", "ssh host cat /dev/vdb | chunked-backup backup - --size 10737418240 --volume-id 5d1c3a2e-0b5f-4f6e-9d3c-2a1b0c9d8e7f", "chunked-backup backup 'nbd+unix:///vda?socket=/run/vm1.sock' --incremental --dirty-bitmap nightly", "chunked-backup --store 'swift+http://127.0.0.1:8080/auth/v1.0?container=volumebackups' backup disk.img", "chunked-backup --store 's3://volumebackups?endpoint=https://s3.example.com&region=eu-west-1' backup disk.img"])))

export const backupIdArg = Args.text({ name: "backup-id" }).pipe(Args.withDescription("a backup's id, or a unique prefix of it (8 characters at least)"))


const deleteCommand = Command.make("delete", { backupId: backupIdArg }, (args) =>
  withServices((options) =>
    Effect.gen(function* () {
        const backupId = yield* resolveBackupId(args.backupId)
      const result = yield* deleteBackup(backupId, options.lease).pipe(
        reportInterruption(backupId, (status) => `delete of ${backupId} interrupted: its record is ${status}; run delete again, or cleanup once its lease runs out`)
      )
      yield* print(options, result, `deleted ${backupId} (${result.objectsDeleted} objects)`)
    })
  )
).pipe(Command.withDescription(described("delete a backup that no incremental depends on", ["chunked-backup delete 7dc7af47"])))

const listCommand = Command.make(
  "list",
  {
    volumeId: Options.text("volume-id").pipe(Options.withDescription("only this volume's backups"), Options.optional),
    all: Options.boolean("all").pipe(Options.withDescription("also failed (error) and deleted backups")),
    status: Options.text("status").pipe(Options.withDescription("only backups in this status (available, error, deleted, ...)"), Options.optional),
    tree: Options.boolean("tree").pipe(Options.withDescription("each volume's chains as a tree, with stored bytes and compression ratio per backup"))
  },
  (args) =>
    withServices((options) =>
      Effect.gen(function* () {
        const catalog = yield* BackupCatalog
        const listed = yield* catalog.list(Option.match(args.volumeId, { onNone: () => ({}), onSome: (volumeId) => ({ volumeId }) }))
        // By default what a user can act on: no deleted records, no failed attempts.
        const records = listed.filter((r) =>
          Option.isSome(args.status) ? r.status === args.status.value : args.all || (r.status !== "deleted" && r.status !== "error")
        )
        const rows = records.map((r) => [
          r.id,
          r.status,
          r.parent_id === null ? "full" : `incr of ${r.parent_id.slice(0, 8)}`,
          formatBytes(r.volume_size_bytes),
          String(r.object_count),
          utcTime(r.created_at),
          r.display_name ?? ""
        ])
        const hidden = listed.length - records.length
        const note = hidden > 0 && Option.isNone(args.status) && !args.all ? `\n(${hidden} failed or deleted not shown: --all)` : ""
        if (args.tree) return yield* printTree(records, options.json, note)
        const text = rows.length === 0 ? `no backups${note}` : table(["ID", "STATUS", "TYPE", "SIZE", "OBJECTS", "CREATED (UTC)", "NAME"], rows) + note
        yield* print(options, records.map(recordJson), text)
      })
    )
).pipe(Command.withDescription(described("list backups, oldest first", ["chunked-backup list", "chunked-backup list --all", "chunked-backup list --tree", "chunked-backup --json list --status error"])))

const showCommand = Command.make("show", { backupId: backupIdArg }, (args) =>
  withServices((options) =>
    Effect.gen(function* () {
        const backupId = yield* resolveBackupId(args.backupId)
      const found = yield* (yield* BackupCatalog).get(backupId)
      const record = { ...recordJson(found), ...storedFields(yield* storedSizeOf(found)) }
      const text = Object.entries(record).map(([k, v]) => `${k.padEnd(20)} ${v ?? ""}`).join("\n")
      yield* print(options, record, text)
    })
  )
).pipe(Command.withDescription(described("show one backup record", ["chunked-backup show 7dc7af47"])))

const cancelCommand = Command.make("cancel", { backupId: backupIdArg }, (args) =>
  withServices((options) =>
    Effect.gen(function* () {
        const backupId = yield* resolveBackupId(args.backupId)
      const catalog = yield* BackupCatalog
      // A running backup stops when its record turns deleting; a restore when it leaves restoring.
      if (yield* catalog.transition(backupId, ["creating"], "deleting")) {
        return yield* print(options, { backupId: backupId, cancelled: "backup" }, `cancelling backup ${backupId}`)
      }
      if (yield* catalog.transition(backupId, ["restoring"], "available")) {
        return yield* print(options, { backupId: backupId, cancelled: "restore" }, `cancelling restore of ${backupId}`)
      }
      const record = yield* catalog.get(backupId)
      return yield* new InvalidRequest({ reason: `backup ${backupId} is ${record.status}: no backup or restore of it is running` })
    })
  )
).pipe(Command.withDescription(described("cancel a running backup or restore (from another process)", ["chunked-backup cancel 7dc7af47"])))

const exportCommand = Command.make("export-record", { backupId: backupIdArg }, (args) =>
  withServices((options) =>
    Effect.gen(function* () {
        const backupId = yield* resolveBackupId(args.backupId)
      const catalog = yield* BackupCatalog
      const record = yield* catalog.get(backupId)
      if (record.status !== "available") {
        return yield* new InvalidRequest({ reason: `backup ${backupId} is ${record.status}; only available backups can be exported` })
      }
      const dependents = yield* dependentsOf(catalog, record.id)
      const exported = exportRecord(record, (yield* ObjectStore).defaults.service, dependents.length)
      yield* print(options, exported, cinderTable([["backup_service", exported.backup_service], ["backup_url", exported.backup_url]]))
    })
  )
).pipe(Command.withDescription(described("print the record as Cinder's backup-export does", ["chunked-backup export-record 7dc7af47", "chunked-backup --json export-record 7dc7af47"])))

const importCommand = Command.make(
  "import-record",
  { backupService: Args.text({ name: "backup_service" }), backupUrl: Args.text({ name: "backup_url" }) },
  (args) =>
    withServices((options) =>
      Effect.gen(function* () {
        const record = yield* importRecord(args.backupService, args.backupUrl)
        const known = yield* Effect.option((yield* BackupCatalog).get(record.id))
        if (Option.isSome(known)) {
          return yield* new InvalidRequest({ reason: `backup ${record.id} is already in the catalog (${known.value.status}); nothing was imported` })
        }
        const store = yield* ObjectStore
        // The backup must be in the store before the catalog claims it.
        yield* store.get(record.container!, metadataName(record.service_metadata!))
        yield* (yield* BackupCatalog).create(record)
        yield* print(options, recordJson(record), `imported ${record.id}`)
      }),
      { create: true }
    )
).pipe(Command.withDescription(described("recreate a record exported by Cinder's backup-export or export-record", ["chunked-backup import-record cinder.backup.drivers.posix.PosixBackupDriver eyJpZCI6..."])))

const verifyCommand = Command.make(
  "verify",
  {
    backupId: backupIdArg,
    full: Options.boolean("full").pipe(Options.withDescription("also rebuild the volume and check every sha block"))
  },
  (args) =>
    withCodecServices((options) =>
      Effect.gen(function* () {
        const backupId = yield* resolveBackupId(args.backupId)
        const view = makeProgressView({ json: options.json })
        const report = yield* verify(backupId, {
          full: args.full,
          ...view.options,
          ...options.lease
        }).pipe(reportInterruption(backupId, () => `verify of ${backupId} interrupted: nothing was changed`))
        const lines = report.problems.map((p) => `problem: backup ${p.backupId}${p.object === undefined ? "" : ` object ${p.object}`}: ${p.problem}`)
        const summary = `${report.problems.length === 0 ? "ok" : "FAILED"}: ${report.backups} backup(s), ${report.objectsChecked} objects, ${formatBytes(report.bytesChecked)} checked${report.full ? ", sha256 list checked" : ""}`
        yield* print(options, { ...report, ...(yield* summarize(view, options)) }, [...lines, summary].join("\n"))
        if (report.problems.length > 0) {
          return yield* new VerificationFailed({ backupId: report.backupId, problems: report.problems })
        }
      })
    )
).pipe(Command.withDescription(described("check a backup's chain, objects and md5s (and with --full its sha256 list) without writing", ["chunked-backup verify 7dc7af47", "chunked-backup verify 7dc7af47 --full"])))

const cleanupLine = (a: CleanupAction) =>
  a.failure === undefined
    ? `${a.backupId}: ${a.was} -> ${a.now} (${a.objectsDeleted} objects deleted)`
    : `${a.backupId}: ${a.was} -> ${a.now}, objects still to delete (${a.failure.message}); run cleanup again`

const cleanupCommand = Command.make("cleanup", {}, () =>
  withServices((options) =>
    Effect.gen(function* () {
      const actions = yield* cleanup(options.lease)
      const json = actions.map(({ failure, ...a }) => (failure === undefined ? a : { ...a, pending: failure.message }))
      yield* print(options, json, actions.length === 0 ? "nothing to clean up" : actions.map(cleanupLine).join("\n"))
      // What is still pending exits as the store error it met (9, or 10 when transient).
      const pending = actions.find((a) => a.failure !== undefined)
      if (pending?.failure !== undefined) return yield* Effect.fail(pending.failure)
    })
  )
).pipe(Command.withDescription(described("settle backups, restores and deletes whose process died (also run before every backup)", ["chunked-backup cleanup"])))

const pruneCommand = Command.make("prune", pruneOptions, (args) => withServices((options) => runPrune(args, options))).pipe(Command.withDescription(pruneHelp))
/** What the commands made in modules of their own are handed, so those import nothing of this one at run time. */
export interface CommandKit {
  readonly withServices: typeof withServices
  readonly withCodecServices: typeof withCodecServices
  readonly print: typeof print
  readonly summarize: typeof summarize
  readonly backupIdArg: typeof backupIdArg
}
const kit: CommandKit = { withServices, withCodecServices, print, summarize, backupIdArg }
const restoreCommand = makeRestoreCommand(kit)
const scanCommand = makeScanCommand(kit)
const copyCommand = makeCopyCommand(kit)

export const command = root.pipe(
  Command.withDescription("Cinder-compatible chunked backups of volumes"),
  Command.withSubcommands([
    backupCommand,
    restoreCommand,
    deleteCommand,
    listCommand,
    showCommand,
    cancelCommand,
    exportCommand,
    importCommand,
    verifyCommand,
    cleanupCommand,
    scanCommand,
    pruneCommand,
    copyCommand
  ])
)
