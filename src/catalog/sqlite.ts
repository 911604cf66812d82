/**
 * SQLite BackupCatalog on @effect/sql-sqlite-node: the embedded default
 * catalog. Several CLI processes may share one file: WAL lets readers run
 * beside the one writer, the busy timeout makes writers queue instead of
 * failing with SQLITE_BUSY, and read-modify-write runs under BEGIN IMMEDIATE.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqlSchema from "@effect/sql/SqlSchema"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { Duration, Effect, Layer, Option, Predicate, Schedule, Schema, Stream } from "effect"
import { resolve } from "node:path"
import { BackupNotFound, type CatalogError } from "../domain/errors.js"
import { BackupRecord, BackupStatus } from "../domain/record.js"
import { BackupCatalog } from "./BackupCatalog.js"
import { catalogError, messageOf, reasonOf, storageErrors } from "./sqlErrors.js"
import { listConditions } from "./sqlFilters.js"

/** Settings of the SQLite catalog. */
export interface SqliteCatalogOptions {
  /** How often `watch` looks for changes committed by other connections (default 100 ms). */
  readonly pollInterval?: Duration.DurationInput
}

/** A row of `backups`: dates are ISO-8601 UTC text with ms, readable in the sqlite3 shell and ordered as text. */
const BackupRow = Schema.Struct({
  ...BackupRecord.fields,
  created_at: Schema.Date,
  updated_at: Schema.NullOr(Schema.Date),
  lease_expires_at: Schema.NullOr(Schema.Date)
})

/** Each migration's name as the Migrator records it (the key without its number). */
const migrationNames: Readonly<Record<string, string>> = { "1_create_backups": "create_backups", "2_add_lease": "add_lease" }

const migrations = Migrator.fromRecord({
  "1_create_backups": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.all(
      [
        sql`CREATE TABLE backups (
          id TEXT PRIMARY KEY NOT NULL,
          volume_id TEXT NOT NULL,
          parent_id TEXT,
          container TEXT,
          service_metadata TEXT,
          status TEXT NOT NULL,
          size INTEGER NOT NULL,
          volume_size_bytes INTEGER NOT NULL,
          object_count INTEGER NOT NULL,
          display_name TEXT,
          display_description TEXT,
          created_at TEXT NOT NULL,
          updated_at TEXT,
          availability_zone TEXT,
          service TEXT,
          fail_reason TEXT
        )`,
        sql`CREATE INDEX backups_volume_id ON backups (volume_id)`,
        sql`CREATE INDEX backups_parent_id ON backups (parent_id)`
      ],
      { discard: true }
    )),
  "2_add_lease": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.asVoid(sql`ALTER TABLE backups ADD COLUMN lease_expires_at TEXT`))
})

/**
 * The catalog's own migrations table, so that an application sharing its
 * SqliteClient keeps Effect's default `effect_sql_migrations` for its own
 * migrations. The generic Migrator: SqliteMigrator only adds a schema dump
 * that shells out to the sqlite3 binary, and would make the layer need a
 * CommandExecutor.
 */
const MIGRATIONS_TABLE = "chunked_backup_migrations"
const runMigrations = Migrator.make({})({ loader: migrations, table: MIGRATIONS_TABLE })

/**
 * Catalogs made before the catalog had its own table recorded their
 * migrations in `effect_sql_migrations`: those rows move over (and out of
 * the default table), so they are not run twice.
 */
const adoptDefaultTable = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  Effect.gen(function* () {
    const tables = yield* sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('effect_sql_migrations', ${MIGRATIONS_TABLE})`
    const names = new Set(tables.map((t) => t.name))
    if (!names.has("effect_sql_migrations") || names.has(MIGRATIONS_TABLE)) return
    const ours = Object.keys(migrationNames)
    const rows = yield* sql<{ migration_id: number; name: string; created_at: string }>`SELECT migration_id, name, created_at FROM effect_sql_migrations WHERE name IN ${sql.in(ours.map((id) => migrationNames[id]!))}`
    if (rows.length === 0) return
    yield* sql`CREATE TABLE ${sql(MIGRATIONS_TABLE)} (
      migration_id integer PRIMARY KEY NOT NULL,
      created_at datetime NOT NULL DEFAULT current_timestamp,
      name VARCHAR(255) NOT NULL
    )`
    yield* sql`INSERT INTO ${sql(MIGRATIONS_TABLE)} ${sql.insert(rows)}`
    yield* sql`DELETE FROM effect_sql_migrations WHERE name IN ${sql.in(rows.map((r) => r.name))}`
  })
)

const migrate = Effect.zipRight(adoptDefaultTable, runMigrations)

// better-sqlite3 waits for a locked file synchronously, blocking the event loop: if
// one connection of this process held a transaction across an async step, another
// would block the loop until the timeout and fail. So a process queues its own
// writers per file, and SQLite's lock only arbitrates between processes.
const writeLocks = new Map<string, Effect.Semaphore>()
const writeLockFor = (filename: string) => {
  const key = resolve(filename)
  const existing = writeLocks.get(key)
  if (existing !== undefined) return existing
  const lock = Effect.unsafeMakeSemaphore(1)
  writeLocks.set(key, lock)
  return lock
}

/** A BackupCatalog over an open SqliteClient; runs the migrations first. */
export const makeSqliteCatalog = (options: SqliteCatalogOptions = {}) =>
  Effect.gen(function*() {
    const sql = yield* SqliteClient.SqliteClient
    const lock = writeLockFor(sql.config.filename)
    const pollInterval = options.pollInterval ?? Duration.millis(100)
    const write = lock.withPermits(1)

    // BEGIN IMMEDIATE takes the write lock before the first read, so two
    // read-modify-writes cannot interleave. (A deferred transaction that has
    // read cannot wait for the lock: SQLite fails it at once with SQLITE_BUSY.)
    const transaction = <A, E, R>(body: Effect.Effect<A, E, R>) =>
      write(Effect.scoped(Effect.flatMap(sql.reserve, (conn) => {
        const exec = (statement: string) => Effect.asVoid(conn.executeUnprepared(statement, [], undefined))
        return Effect.uninterruptibleMask((restore) =>
          Effect.zipRight(
            exec("BEGIN IMMEDIATE"),
            restore(Effect.provideService(body, SqlClient.TransactionConnection, [conn, 0])).pipe(
              Effect.tap(() => exec("COMMIT")),
              // also after a failed COMMIT, which leaves the transaction open
              Effect.onError(() => Effect.ignore(exec("ROLLBACK")))
            )
          )
        )
      })))

    // Explicit rather than relying on better-sqlite3's default; WAL is set by SqliteClient.
    yield* sql`PRAGMA busy_timeout = 5000`.pipe(storageErrors("open"))
    // Inside BEGIN IMMEDIATE so processes opening a new file together migrate
    // it once; the Migrator turns a failing migration into a defect.
    yield* transaction(Effect.provideService(migrate, SqlClient.SqlClient, sql)).pipe(
      Effect.catchAllDefect((defect) => Effect.fail(catalogError("migrate", undefined, messageOf(defect), defect))),
      storageErrors("migrate")
    )

    const findRow = SqlSchema.findOne({
      Request: Schema.String,
      Result: BackupRow,
      execute: (id) => sql`SELECT * FROM backups WHERE id = ${id}`
    })
    const findRows = SqlSchema.findAll({
      Request: Schema.Struct({
        volumeId: Schema.optionalWith(Schema.String, { exact: true }),
        statuses: Schema.optionalWith(Schema.Array(BackupStatus), { exact: true })
      }),
      Result: BackupRow,
      // rowid breaks ties in insertion order, like the memory catalog
      execute: (filter) => sql`SELECT * FROM backups WHERE ${sql.and(listConditions(sql, filter))} ORDER BY created_at, rowid`
    })
    const encodeRow = Schema.encode(BackupRow)
    const decodeStatus = Schema.decodeUnknown(BackupStatus)

    const get = (id: string) =>
      Effect.flatMap(findRow(id), Option.match({
        onNone: () => Effect.fail(new BackupNotFound({ backupId: id })),
        onSome: Effect.succeed
      }))

    // data_version moves when another connection commits, total_changes() when
    // this one writes: a poll reads the row only when one of them moved.
    const version = Effect.map(
      sql<{ v: number; local: number }>`SELECT data_version AS v, total_changes() AS local FROM pragma_data_version`,
      (rows) => `${rows[0]?.v}:${rows[0]?.local}`
    )
    const readStatus = (id: string) =>
      Effect.flatMap(
        sql<{ status: unknown }>`SELECT status FROM backups WHERE id = ${id}`,
        (rows) => (rows[0] === undefined ? Effect.succeed(null) : decodeStatus(rows[0].status))
      )

    return BackupCatalog.of({
      get: (id) => get(id).pipe(storageErrors("get", id)),
      list: (filter = {}) => findRows(filter).pipe(storageErrors("list")),
      create: (record) =>
        Effect.flatMap(encodeRow(record), (row) => write(sql`INSERT INTO backups ${sql.insert(row)}`)).pipe(
          Effect.asVoid,
          Effect.catchIf(
            (error) => Predicate.isTagged(error, "SqlError") && Predicate.hasProperty(error.cause, "code") &&
              error.cause.code === "SQLITE_CONSTRAINT_PRIMARYKEY",
            () => Effect.fail(catalogError("create", record.id, "a backup with this id exists"))
          ),
          storageErrors("create", record.id)
        ),
      update: (id, change) =>
        transaction(Effect.gen(function*() {
          // the id is the row's key; updated_at records this write, as in the memory catalog
          const next: BackupRecord = { ...change(yield* get(id)), id, updated_at: new Date() }
          yield* sql`UPDATE backups SET ${sql.update(yield* encodeRow(next), ["id"])} WHERE id = ${id}`
          return next
        })).pipe(storageErrors("update", id)),
      transition: (id, from, to, failReason) =>
        Effect.gen(function*() {
          if (from.length > 0) {
            // one statement: the check and the write are atomic across processes
            const changed = yield* write(sql`UPDATE backups
              SET status = ${to}, fail_reason = COALESCE(${failReason ?? null}, fail_reason),
                  updated_at = ${new Date().toISOString()}
              WHERE id = ${id} AND status IN ${sql.in(from)} RETURNING id`)
            if (changed.length > 0) return true
          }
          yield* get(id) // nothing changed: a status mismatch, or no such record
          return false
        }).pipe(storageErrors("transition", id)),
      remove: (id, from) =>
        (from.length === 0
          ? Effect.succeed(false)
          : Effect.map(
              write(sql`DELETE FROM backups WHERE id = ${id} AND status IN ${sql.in(from)} RETURNING id`),
              (rows) => rows.length > 0
            )).pipe(storageErrors("remove", id)),
      watch: (id) =>
        Stream.suspend(() => {
          let seen: string | undefined // the version of the last read, per subscriber
          const poll = Effect.flatMap(version, (current) => {
            if (current === seen) return Effect.succeed([])
            seen = current
            return Effect.map(readStatus(id), (status) => [status])
          })
          return Stream.repeatEffectWithSchedule(poll, Schedule.spaced(pollInterval)).pipe(
            Stream.flattenIterables,
            Stream.takeWhile((status): status is BackupStatus => status !== null),
            Stream.changes,
            Stream.mapError((error) => catalogError("watch", id, reasonOf(error), error))
          )
        })
    })
  })

/** The SQLite catalog in `filename` (created and migrated when needed). */
export const layerSqliteCatalog = (
  filename: string,
  options: SqliteCatalogOptions = {}
): Layer.Layer<BackupCatalog, CatalogError> =>
  Layer.effect(BackupCatalog, makeSqliteCatalog(options)).pipe(
    Layer.provide(Layer.scoped(
      SqliteClient.SqliteClient,
      SqliteClient.make({ filename, disableWAL: false }).pipe(
        // better-sqlite3 throws when it cannot open the file (missing directory, not a database)
        Effect.catchAllDefect((defect) => Effect.fail(catalogError("open", undefined, messageOf(defect), defect))),
        Effect.provide(Reactivity.layer)
      )
    ))
  )
