/**
 * PostgreSQL BackupCatalog on @effect/sql-pg (node-postgres): one catalog
 * shared by many hosts. Read-modify-writes lock their row (`SELECT … FOR
 * UPDATE`) inside one transaction, `transition` is one compare-and-set
 * UPDATE, and a trigger NOTIFYs every status change so `watch` is pushed,
 * not polled (src/catalog/pgWatch.ts).
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import { Context, Duration, Effect, Layer, Predicate, Schema } from "effect"
import { BackupNotFound, type CatalogError } from "../domain/errors.js"
import { BackupRecord, BackupStatus } from "../domain/record.js"
import { BackupCatalog } from "./BackupCatalog.js"
import * as Pg from "pg"
import { parseIntoClientConfig } from "pg-connection-string"
import { ClosingClient, int8AsNumber, passwordFromEnvironment, type PgConfig, STATUS_CHANNEL, watchStatus } from "./pgWatch.js"
import type { PgCatalogOptions } from "./pg.js"
import { catalogError, messageOf, type StorageError, storageErrors } from "./sqlErrors.js"
import { listConditions } from "./sqlFilters.js"

const migrations = Migrator.fromRecord({
  "1_create_backups": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.all(
      [
        // seq keeps insertion order among equal created_at, like the memory catalog
        sql.unsafe(`CREATE TABLE backups (
          seq BIGSERIAL NOT NULL,
          id TEXT PRIMARY KEY NOT NULL,
          volume_id TEXT NOT NULL,
          parent_id TEXT,
          container TEXT,
          service_metadata TEXT,
          status TEXT NOT NULL,
          size INTEGER NOT NULL,
          volume_size_bytes BIGINT NOT NULL,
          object_count INTEGER NOT NULL,
          display_name TEXT,
          display_description TEXT,
          created_at TIMESTAMPTZ NOT NULL,
          updated_at TIMESTAMPTZ,
          availability_zone TEXT,
          service TEXT,
          fail_reason TEXT,
          lease_expires_at TIMESTAMPTZ
        )`),
        sql.unsafe(`CREATE INDEX backups_volume_id ON backups (volume_id)`),
        sql.unsafe(`CREATE INDEX backups_parent_id ON backups (parent_id)`),
        // In the database, so a change made by any client (psql included) reaches every watcher.
        sql.unsafe(`CREATE FUNCTION chunked_backup_notify() RETURNS trigger LANGUAGE plpgsql AS $fn$
          BEGIN
            PERFORM pg_notify('${STATUS_CHANNEL}', CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END);
            RETURN NULL;
          END $fn$`),
        sql.unsafe(`CREATE TRIGGER backups_notify AFTER INSERT OR DELETE OR UPDATE OF status ON backups
          FOR EACH ROW EXECUTE FUNCTION chunked_backup_notify()`)
      ],
      { discard: true }
    ))
})

/** The catalog's own migrations table, as in the SQLite catalog. */
const MIGRATIONS_TABLE = "chunked_backup_migrations"
const runMigrations = Migrator.make({})({ loader: migrations, table: MIGRATIONS_TABLE })

/**
 * Hosts opening a new database together migrate it once: the first holds
 * this lock, the rest then find it done. The table is made here, as the
 * Migrator would, because its own probe for it (a failing `::regclass`)
 * would abort the enclosing transaction.
 */
const migrate = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql.withTransaction(Effect.all([
    sql`SELECT pg_advisory_xact_lock(hashtext(${MIGRATIONS_TABLE}))`,
    sql`CREATE TABLE IF NOT EXISTS ${sql(MIGRATIONS_TABLE)} (
      migration_id integer primary key,
      created_at timestamp with time zone not null default now(),
      name text not null
    )`,
    runMigrations
  ], { discard: true })))

const decodeRecord = Schema.decodeUnknown(BackupRecord)
const encodeRecord = Schema.encode(BackupRecord)
const decodeStatus = Schema.decodeUnknown(BackupStatus)

/** A BackupCatalog over an open PgClient; runs the migrations first. */
const makePgCatalog = (config: PgConfig, options: PgCatalogOptions = {}) =>
  Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    yield* migrate.pipe(
      Effect.catchAllDefect((defect) => Effect.fail(catalogError("migrate", undefined, messageOf(defect), defect))),
      storageErrors("migrate")
    )

    const get = (id: string): Effect.Effect<BackupRecord, BackupNotFound | StorageError> =>
      Effect.flatMap(sql`SELECT * FROM backups WHERE id = ${id}`, (rows): Effect.Effect<BackupRecord, BackupNotFound | StorageError> =>
        rows[0] === undefined ? Effect.fail(new BackupNotFound({ backupId: id })) : decodeRecord(rows[0]))
    const readStatus = (id: string) =>
      Effect.flatMap(
        sql<{ status: unknown }>`SELECT status FROM backups WHERE id = ${id}`,
        (rows) => (rows[0] === undefined ? Effect.succeed(null) : decodeStatus(rows[0].status))
      )

    return BackupCatalog.of({
      get: (id) => get(id).pipe(storageErrors("get", id)),
      list: (filter) =>
        Effect.flatMap(
          sql`SELECT * FROM backups WHERE ${sql.and(listConditions(sql, filter))} ORDER BY created_at, seq`,
          (rows) => Effect.forEach(rows, (row) => decodeRecord(row))
        ).pipe(storageErrors("list")),
      create: (record) =>
        Effect.flatMap(encodeRecord(record), (row) => sql`INSERT INTO backups ${sql.insert(row)}`).pipe(
          Effect.asVoid,
          Effect.catchIf(
            (error) => Predicate.isTagged(error, "SqlError") && Predicate.hasProperty(error.cause, "code") &&
              error.cause.code === "23505", // unique_violation
            () => Effect.fail(catalogError("create", record.id, "a backup with this id exists"))
          ),
          storageErrors("create", record.id)
        ),
      update: (id, change) =>
        sql.withTransaction(Effect.gen(function*() {
          // the row stays locked until COMMIT: another host's read-modify-write waits for this one
          const rows = yield* sql`SELECT * FROM backups WHERE id = ${id} FOR UPDATE`
          if (rows[0] === undefined) return yield* new BackupNotFound({ backupId: id })
          const next: BackupRecord = { ...change(yield* decodeRecord(rows[0])), id, updated_at: new Date() }
          yield* sql`UPDATE backups SET ${sql.update(yield* encodeRecord(next), ["id"])} WHERE id = ${id}`
          return next
        })).pipe(storageErrors("update", id)),
      transition: (id, from, to, failReason) =>
        Effect.gen(function*() {
          if (from.length > 0) {
            // one statement: the check and the write are atomic across hosts
            const changed = yield* sql`UPDATE backups
              SET status = ${to}, fail_reason = COALESCE(${failReason ?? null}::text, fail_reason),
                  updated_at = ${new Date()}
              WHERE id = ${id} AND status IN ${sql.in(from)} RETURNING id`
            if (changed.length > 0) return true
          }
          yield* get(id) // nothing changed: a status mismatch, or no such record
          return false
        }).pipe(storageErrors("transition", id)),
      remove: (id, from) =>
        (from.length === 0
          ? Effect.succeed(false)
          : Effect.map(
              sql`DELETE FROM backups WHERE id = ${id} AND status IN ${sql.in(from)} RETURNING id`,
              (rows) => rows.length > 0
            )).pipe(storageErrors("remove", id)),
      watch: (id) =>
        watchStatus(config, id, readStatus(id), Duration.decode(options.unreachableTimeout ?? Duration.seconds(10)))
    })
  })

const withoutPassword = ({ password: _password, ...settings }: Record<string, unknown>) => settings

/**
 * node-postgres settings for `url`: the password comes from PGPASSWORD or a
 * .pgpass file (node-postgres reads both), `sslmode` from the URL.
 */
const pgConfig = (url: string, options: PgCatalogOptions): PgConfig => ({
  // Fields, not `connectionString`: node-postgres would take the URL's (absent) password over the password function.
  ...withoutPassword(parseIntoClientConfig(url)),
  connectionTimeoutMillis: Duration.toMillis(options.connectTimeout ?? Duration.seconds(5)),
  query_timeout: Duration.toMillis(options.queryTimeout ?? Duration.seconds(30)),
  keepAlive: true,
  application_name: "chunked-backup",
  max: options.maxConnections ?? 4
})

/** The PostgreSQL catalog at `url`, migrated when needed (see layerPgCatalog in ./pg.ts). */
export const layerPgCatalogNow = (url: string, options: PgCatalogOptions = {}): Layer.Layer<BackupCatalog, CatalogError> =>
  Layer.unwrapEffect(Effect.map(
    Effect.try({
      try: () => pgConfig(url, options),
      // not the URL itself: it is the caller's, and may hold what it should not
      catch: (cause) => catalogError("open", undefined, `not a PostgreSQL URL: ${messageOf(cause)}`)
    }),
    (config) => layerFromConfig(config, options)
  ))

const layerFromConfig = (config: PgConfig, options: PgCatalogOptions): Layer.Layer<BackupCatalog, CatalogError> =>
  Layer.effect(BackupCatalog, makePgCatalog(config, options)).pipe(
    Layer.provide(Layer.scopedContext(
      Effect.suspend(() =>
        PgClient.fromPool({
          acquire: Effect.acquireRelease(
            Effect.sync(() => {
              const pool = new Pg.Pool({ ...config, types: int8AsNumber, Client: ClosingClient, password: passwordFromEnvironment })
              pool.on("error", () => {}) // an idle connection that broke: the next checkout reconnects
              return pool
            }),
            (pool) => Effect.promise(() => pool.end()).pipe(Effect.timeoutOption(1000))
          ),
          types: int8AsNumber
        })
      ).pipe(
        Effect.map((client) => Context.make(PgClient.PgClient, client).pipe(Context.add(SqlClient.SqlClient, client))),
        Effect.catchAllDefect((defect) => Effect.fail(catalogError("open", undefined, messageOf(defect), defect))),
        storageErrors("open"),
        Effect.provide(Reactivity.layer)
      )
    ))
  )
