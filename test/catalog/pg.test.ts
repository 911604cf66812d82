import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Fiber, Layer, Queue, Stream } from "effect"
import { connect, createServer, type Server, type Socket } from "node:net"
import { BackupCatalog, type BackupStatus, layerPgCatalog, newBackupRecord, type PgCatalogOptions } from "../../src/index.js"
import { catalogConformance } from "../../src/testing/index.js"
import { freshDatabase, PG_SKIP_REASON, pgUrl, runSql } from "../support/pg.js"

const record = (id: string) => newBackupRecord({ id, volume_id: "vol", volume_size_bytes: 4096 })

/** An independent catalog (its own pool and listener) on `url`, open for the current scope. */
const open = (url: string, options?: PgCatalogOptions) =>
  Effect.map(Layer.build(layerPgCatalog(url, options)), Context.get(BackupCatalog))

/** Subscribes to `id` and returns a take that fails after `within`. */
const subscribe = (catalog: BackupCatalog, id: string, within: Duration.DurationInput = "2 seconds") =>
  Effect.gen(function*() {
    const seen = yield* Queue.unbounded<BackupStatus | "failed">()
    const fiber = yield* Effect.fork(
      Stream.runForEach(catalog.watch(id), (s) => Queue.offer(seen, s)).pipe(Effect.tapError(() => Queue.offer(seen, "failed")))
    )
    const next = Effect.timeoutFail(Queue.take(seen), { duration: within, onTimeout: () => `no status within ${Duration.format(within)}` })
    return { fiber, next }
  })

/**
 * A TCP relay on 127.0.0.1 in front of the server: `cut` drops every
 * connection and stops listening (the catalog becomes unreachable), `mend`
 * listens again on the same port.
 */
const relay = (target: URL) =>
  Effect.acquireRelease(
    Effect.async<{ url: string; cut: () => void; mend: () => void; close: () => void }>((resume) => {
      const sockets = new Set<Socket>()
      let server: Server
      let port = 0
      const serve = () => {
        server = createServer((client) => {
          const upstream = connect(Number(target.port), target.hostname)
          for (const s of [client, upstream]) {
            sockets.add(s)
            s.on("error", () => {})
            s.on("close", () => sockets.delete(s))
          }
          client.pipe(upstream).pipe(client)
        })
        server.listen(port, "127.0.0.1", () => {
          port = (server.address() as { port: number }).port
          const url = new URL(target.toString())
          url.port = String(port)
          resume(Effect.succeed({ url: url.toString(), cut, mend: serve, close: cut }))
        })
      }
      const cut = () => {
        server.close()
        for (const s of sockets) s.destroy()
      }
      serve()
    }),
    (r) => Effect.sync(() => r.close())
  )

describe.skipIf(pgUrl === undefined)(pgUrl === undefined ? `PostgreSQL catalog (skipped: ${PG_SKIP_REASON})` : "PostgreSQL catalog", () => {
  catalogConformance("postgres", Layer.unwrapScoped(Effect.map(freshDatabase(), ({ url }) => layerPgCatalog(url))))

  it.scoped("migrations are idempotent, also when hosts open a new database together; the trigger notifies", () =>
    Effect.gen(function*() {
      const { url } = yield* freshDatabase()
      const catalogs = yield* Effect.all([open(url), open(url), open(url)], { concurrency: "unbounded" })
      yield* catalogs[0]!.create(record("m1"))
      expect((yield* catalogs[2]!.get("m1")).id).toBe("m1")
      yield* open(url)
      expect(runSql(url, "SELECT migration_id || ':' || name FROM chunked_backup_migrations").trim()).toBe("1:create_backups")
      expect(runSql(url, "SELECT tgname FROM pg_trigger WHERE tgname = 'backups_notify'").trim()).toBe("backups_notify")
    }))

  it.live("a change by another client (psql) reaches a watcher within 500 ms, and a deleted row ends the watch", () =>
    Effect.scoped(Effect.gen(function*() {
      const { url } = yield* freshDatabase()
      const catalog = yield* open(url)
      yield* catalog.create(record("x1"))
      const { fiber, next } = yield* subscribe(catalog, "x1")
      expect(yield* next).toBe("creating")
      runSql(url, "UPDATE backups SET status = 'deleting' WHERE id = 'x1'")
      const started = Date.now()
      expect(yield* next).toBe("deleting")
      expect(Date.now() - started).toBeLessThan(500)
      runSql(url, "DELETE FROM backups WHERE id = 'x1'")
      yield* fiber.await.pipe(Effect.timeout("1 second"))
    })))

  it.live("two catalogs (two hosts) updating one record concurrently lose nothing; one of racing transitions wins", () =>
    Effect.scoped(Effect.gen(function*() {
      const { url } = yield* freshDatabase()
      const [a, b] = yield* Effect.all([open(url), open(url)])
      yield* a.create(record("shared"))
      const bump = (c: BackupCatalog) => c.update("shared", (r) => ({ ...r, object_count: r.object_count + 1 }))
      yield* Effect.all([Effect.replicateEffect(bump(a), 40), Effect.replicateEffect(bump(b), 40)], { concurrency: "unbounded" })
      expect((yield* b.get("shared")).object_count).toBe(80)
      const won = yield* Effect.all([a.transition("shared", ["creating"], "available"), b.transition("shared", ["creating"], "available")], {
        concurrency: "unbounded"
      })
      expect(won.filter((w) => w)).toHaveLength(1)
    })))

  it.live("a lost connection is re-established and the status re-read: a change made while cut off is not missed", () =>
    Effect.scoped(Effect.gen(function*() {
      const { url } = yield* freshDatabase()
      const proxy = yield* relay(new URL(url))
      const watcher = yield* open(proxy.url, { unreachableTimeout: "5 seconds" })
      const writer = yield* open(url)
      yield* writer.create(record("r1"))
      const { next } = yield* subscribe(watcher, "r1", "4 seconds")
      expect(yield* next).toBe("creating")
      proxy.cut()
      yield* writer.transition("r1", ["creating"], "deleting")
      yield* Effect.sleep("300 millis")
      proxy.mend()
      expect(yield* next).toBe("deleting")
    })))

  it.live("a catalog that stays unreachable: watch fails with CatalogError after the bound, not a hang", () =>
    Effect.scoped(Effect.gen(function*() {
      const { url } = yield* freshDatabase()
      const proxy = yield* relay(new URL(url))
      const watcher = yield* open(proxy.url, { unreachableTimeout: "1 second", connectTimeout: "500 millis" })
      yield* watcher.create(record("u1"))
      const started = Date.now()
      const watching = yield* Effect.fork(Stream.runDrain(watcher.watch("u1")))
      yield* Effect.sleep("200 millis")
      proxy.cut()
      const error = yield* Effect.flip(Fiber.join(watching)).pipe(
        Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error("the watch hung") })
      )
      expect(error).toMatchObject({ _tag: "CatalogError", operation: "watch", backupId: "u1" })
      expect(error.message).toMatch(/unreachable/)
      expect(Date.now() - started).toBeLessThan(4000)
    })))

  it.effect("a closed port is a CatalogError within the connect timeout, and the message holds no password", () =>
    Effect.gen(function*() {
      const started = Date.now()
      const error = yield* Effect.flip(Effect.scoped(open("postgres://nobody@127.0.0.1:1/none", { connectTimeout: "1 second" })))
      expect(error).toMatchObject({ _tag: "CatalogError" })
      expect(Date.now() - started).toBeLessThan(3000)
    }))
})
