import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Queue, Stream } from "effect"
import { execFile } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import {
  BackupCatalog,
  type BackupStatus,
  layerMemoryCatalog,
  layerSqliteCatalog,
  newBackupRecord,
  type SqliteCatalogOptions
} from "../../src/index.js"
import { catalogConformance } from "../../src/testing/index.js"

// better-sqlite3 ships no types and @types/better-sqlite3 is not installed: describe what the tests use.
interface RawDatabase {
  prepare(sql: string): {
    run(...params: ReadonlyArray<unknown>): { changes: number }
    get(...params: ReadonlyArray<unknown>): unknown
    all(...params: ReadonlyArray<unknown>): Array<unknown>
  }
  pragma(source: string, options: { simple: true }): unknown
  close(): void
}
const Database = createRequire(import.meta.url)("better-sqlite3") as new (filename: string) => RawDatabase

const projectRoot = fileURLToPath(new URL("../..", import.meta.url))

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "cb-catalog-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

/** A catalog file in a fresh temp directory, removed when the test ends. */
const withFile = <A, E, R>(use: (file: string) => Effect.Effect<A, E, R>) =>
  Effect.scoped(Effect.flatMap(tempDir, (dir) => use(join(dir, "catalog.db"))))

/** An independent catalog (its own connection) on `file`, open for the current scope. */
const open = (file: string, options?: SqliteCatalogOptions) =>
  Effect.map(Layer.build(layerSqliteCatalog(file, options)), Context.get(BackupCatalog))

/** Runs a CommonJS script in a separate node process, with `args` as process.argv[1...]. */
const node = (script: string, ...args: ReadonlyArray<string>) =>
  Effect.async<string, Error>((resume) => {
    const child = execFile(process.execPath, ["-e", script, ...args], { cwd: projectRoot }, (error, stdout) =>
      resume(error === null ? Effect.succeed(stdout) : Effect.fail(error)))
    return Effect.sync(() => child.kill())
  })

const rawDb = (file: string) => Effect.acquireRelease(Effect.sync(() => new Database(file)), (db) => Effect.sync(() => db.close()))

const record = (id: string) => newBackupRecord({ id, volume_id: "vol", volume_size_bytes: 4096 })

catalogConformance("memory", layerMemoryCatalog())
catalogConformance("sqlite", Layer.unwrapScoped(Effect.map(tempDir, (dir) => layerSqliteCatalog(join(dir, "catalog.db")))))

describe("sqlite catalog specifics", () => {
  it.effect("data persists across two layers opened on the same file", () =>
    withFile((file) =>
      Effect.gen(function*() {
        const original = { ...record("p1"), parent_id: "p0", fail_reason: "x", updated_at: new Date(1_700_000_000_123) }
        yield* Effect.scoped(Effect.flatMap(open(file), (catalog) => catalog.create(original)))
        const reopened = yield* Effect.scoped(Effect.flatMap(open(file), (catalog) => catalog.list()))
        expect(reopened).toEqual([original])
      })))

  it.effect("migrations are idempotent, also when layers open the file together; WAL and indexes are set up", () =>
    withFile((file) =>
      Effect.gen(function*() {
        const first = yield* open(file)
        yield* first.create(record("m1"))
        yield* open(file)
        const [a, b] = yield* Effect.all([open(file), open(file)], { concurrency: "unbounded" })
        expect((yield* a.get("m1")).id).toBe("m1")
        expect(yield* b.list()).toHaveLength(1)
        const db = yield* rawDb(file)
        expect(db.prepare("SELECT migration_id, name FROM chunked_backup_migrations").all()).toEqual([
          { migration_id: 1, name: "create_backups" },
          { migration_id: 2, name: "add_lease" }
        ])
        expect(db.pragma("journal_mode", { simple: true })).toBe("wal")
        const indexes = db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'backups'").all()
        expect(indexes).toEqual(expect.arrayContaining([{ name: "backups_volume_id" }, { name: "backups_parent_id" }]))
        // dates are ISO text with milliseconds
        expect(db.prepare("SELECT created_at FROM backups").get()).toEqual({
          created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
        })
      })))

  it.effect("an application's own migrations in the same database (Effect's default table) do not clash with the catalog's", () =>
    withFile((file) =>
      Effect.gen(function*() {
        const db = yield* rawDb(file)
        // The application migrated first, with a migration 1 of its own, in effect_sql_migrations.
        db.prepare("CREATE TABLE effect_sql_migrations (migration_id integer PRIMARY KEY NOT NULL, created_at datetime NOT NULL DEFAULT current_timestamp, name VARCHAR(255) NOT NULL)").run()
        db.prepare("INSERT INTO effect_sql_migrations (migration_id, name) VALUES (1, 'app_tables')").run()
        const catalog = yield* open(file)
        yield* catalog.create(record("a1"))
        expect((yield* catalog.get("a1")).id).toBe("a1")
        expect(db.prepare("SELECT migration_id, name FROM effect_sql_migrations").all()).toEqual([{ migration_id: 1, name: "app_tables" }])
        expect(db.prepare("SELECT name FROM chunked_backup_migrations ORDER BY migration_id").all()).toEqual([{ name: "create_backups" }, { name: "add_lease" }])
      })))

  it.effect("a catalog made when its migrations were in effect_sql_migrations takes them over and keeps its records", () =>
    withFile((file) =>
      Effect.gen(function*() {
        const first = yield* open(file)
        yield* first.create(record("old"))
        // As an earlier version left the file.
        const db = yield* rawDb(file)
        db.prepare("CREATE TABLE effect_sql_migrations AS SELECT * FROM chunked_backup_migrations").run()
        db.prepare("DROP TABLE chunked_backup_migrations").run()
        const reopened = yield* open(file)
        expect((yield* reopened.get("old")).id).toBe("old")
        expect(db.prepare("SELECT name FROM chunked_backup_migrations ORDER BY migration_id").all()).toEqual([{ name: "create_backups" }, { name: "add_lease" }])
        expect(db.prepare("SELECT * FROM effect_sql_migrations").all()).toEqual([])
      })))

  /** Subscribes to `id` on `catalog` and returns a take that fails after 2 s. */
  const subscribe = (catalog: BackupCatalog, id: string) =>
    Effect.gen(function*() {
      const seen = yield* Queue.unbounded<BackupStatus>()
      const fiber = yield* Effect.fork(Stream.runForEach(catalog.watch(id), (s) => Queue.offer(seen, s)))
      const next = Effect.timeoutFail(Queue.take(seen), { duration: "2 seconds", onTimeout: () => "no status within 2 s" })
      return { fiber, next }
    })

  it.live("a change through a second, independent connection reaches a watcher within 1 s", () =>
    withFile((file) =>
      Effect.gen(function*() {
        const watcher = yield* open(file)
        const writer = yield* open(file)
        yield* writer.create(record("x1"))
        const { next } = yield* subscribe(watcher, "x1")
        expect(yield* next).toBe("creating")
        expect(yield* writer.transition("x1", ["creating"], "deleting")).toBe(true)
        const started = Date.now()
        expect(yield* next).toBe("deleting")
        expect(Date.now() - started).toBeLessThan(1000)
      })))

  it.live("a change written by another OS process reaches a watcher within 1 s", () =>
    withFile((file) =>
      Effect.gen(function*() {
        const catalog = yield* open(file)
        yield* catalog.create(record("x2"))
        const { fiber, next } = yield* subscribe(catalog, "x2")
        expect(yield* next).toBe("creating")
        yield* node(
          `const db = new (require("better-sqlite3"))(process.argv[1]);
           db.prepare("UPDATE backups SET status = 'deleting' WHERE id = ?").run(process.argv[2]);
           db.close()`,
          file,
          "x2"
        )
        const started = Date.now() // the child has exited, so its write is committed
        expect(yield* next).toBe("deleting")
        expect(Date.now() - started).toBeLessThan(1000)

        // and the watch ends when the row disappears
        yield* node(
          `const db = new (require("better-sqlite3"))(process.argv[1]);
           db.prepare("DELETE FROM backups WHERE id = ?").run(process.argv[2]);
           db.close()`,
          file,
          "x2"
        )
        yield* Fiber.join(fiber).pipe(Effect.timeout("1 second"))
      })))

  it.effect("a file that is not a database: CatalogError with SQLite's code and the driver's error as its cause", () =>
    withFile((file) =>
      Effect.gen(function*() {
        writeFileSync(file, "this is not a database, just text that is long enough to have a header page".repeat(100))
        const error = yield* Effect.flip(open(file))
        expect(error).toMatchObject({ _tag: "CatalogError", code: "SQLITE_NOTADB" })
        expect(error.cause).toBeDefined()
      })))

  it.effect("a malformed row is a CatalogError, not a defect", () =>
    withFile((file) =>
      Effect.gen(function*() {
        const catalog = yield* open(file)
        yield* catalog.create(record("bad"))
        const db = yield* rawDb(file)
        db.prepare("UPDATE backups SET status = 'bogus', created_at = 'yesterday' WHERE id = 'bad'").run()
        const error = yield* Effect.flip(catalog.get("bad"))
        expect(error).toMatchObject({ _tag: "CatalogError", operation: "get", backupId: "bad" })
        expect((yield* Effect.flip(catalog.list()))._tag).toBe("CatalogError")
        expect((yield* Effect.flip(Stream.runDrain(catalog.watch("bad"))))).toMatchObject({
          _tag: "CatalogError",
          operation: "watch"
        })
      })))

  it.effect("opening a file in a missing directory is a CatalogError", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Effect.scoped(open("/nonexistent-dir/sub/catalog.db")))
      expect(error).toMatchObject({ _tag: "CatalogError", operation: "open" })
    }))

  it.live("two layers writing concurrently to one file lose nothing and fail nothing", () =>
    withFile((file) =>
      Effect.gen(function*() {
        const [a, b] = yield* Effect.all([open(file), open(file)])
        const ids = Array.from({ length: 20 }, (_, i) => `c${i}`)
        yield* Effect.forEach(ids, (id) => a.create(record(id)), { discard: true })
        const bump = (catalog: BackupCatalog, id: string) =>
          catalog.update(id, (r) => ({ ...r, object_count: r.object_count + 1 }))
        const work = (catalog: BackupCatalog) =>
          Effect.forEach(
            ids,
            (id) =>
              Effect.all([
                catalog.transition(id, ["creating"], "available"),
                bump(catalog, id),
                bump(catalog, id),
                catalog.transition(id, ["available"], "available", "touched")
              ]),
            { concurrency: "unbounded" }
          )
        const [fromA, fromB] = yield* Effect.all([work(a), work(b)], { concurrency: 2 })
        for (const [i, id] of ids.entries()) {
          // exactly one layer won creating -> available
          expect([fromA[i]![0], fromB[i]![0]].filter((won) => won)).toHaveLength(1)
          const final = yield* b.get(id)
          expect(final).toMatchObject({ status: "available", object_count: 4, fail_reason: "touched" })
          expect(yield* a.get(id)).toEqual(final)
        }
      })))

  it.live("a writer in another process interleaves without SQLITE_BUSY or lost updates", () =>
    withFile((file) =>
      Effect.gen(function*() {
        const catalog = yield* open(file)
        yield* catalog.create(record("shared"))
        let childDone = false
        const child = node(
          `const db = new (require("better-sqlite3"))(process.argv[1]);
           db.pragma("busy_timeout = 5000");
           const read = db.prepare("SELECT object_count FROM backups WHERE id = ?");
           const write = db.prepare("UPDATE backups SET object_count = ? WHERE id = ?");
           const bump = db.transaction((id) => write.run(read.get(id).object_count + 1, id));
           for (let i = 0; i < 300; i++) bump.immediate(process.argv[2]);
           db.close()`,
          file,
          "shared"
        ).pipe(Effect.ensuring(Effect.sync(() => (childDone = true))))
        // bump until the child is done, so the two writers overlap
        const ours = Effect.iterate(0, {
          while: () => !childDone,
          body: (n) =>
            catalog.update("shared", (r) => ({ ...r, object_count: r.object_count + 1 })).pipe(
              Effect.zipRight(Effect.sleep("1 millis")),
              Effect.as(n + 1)
            )
        })
        const [, count] = yield* Effect.all([child, ours], { concurrency: 2 })
        expect(count).toBeGreaterThan(0)
        expect((yield* catalog.get("shared")).object_count).toBe(300 + count)
      })))
})
