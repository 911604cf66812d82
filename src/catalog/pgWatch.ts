/**
 * The PostgreSQL catalog's `watch`: a connection of its own LISTENs to the
 * channel the backups trigger NOTIFYs with the id of each changed row, and
 * every notification for the watched id, and every (re)connection, re-reads
 * its status. A lost connection is opened again; one that cannot be opened
 * for `unreachable` is a CatalogError.
 */
import { Deferred, Duration, Effect, Exit, Schedule, Stream } from "effect"
import * as Pg from "pg"
import { getFileName, getPassword } from "pgpass/lib/helper.js"
import { createReadStream, stat } from "node:fs"
import type { CatalogError } from "../domain/errors.js"
import type { BackupStatus } from "../domain/record.js"
import { catalogError, isStorageError, messageOf, reasonOf, type StorageError } from "./sqlErrors.js"

/** The channel the `backups` trigger notifies, with the row's id as payload. */
export const STATUS_CHANNEL = "chunked_backup_status"

/** node-postgres connection settings (a subset of its ClientConfig). */
export interface PgConfig {
  /** host, port, database, user, ssl… as pg-connection-string reads them from the URL, without a password */
  readonly [setting: string]: unknown
  readonly connectionTimeoutMillis: number
  readonly query_timeout: number
  readonly keepAlive: boolean
  readonly application_name: string
  readonly max: number
}

const INT8_OID = 20

/**
 * A client that closes its socket when connecting fails on the client side
 * (a password it does not have, a TLS mismatch): node-postgres leaves that
 * socket open until the server's authentication timeout, which would keep a
 * CLI that already reported the error alive for a minute.
 */
export class ClosingClient extends Pg.Client {
  override connect(): Promise<void>
  override connect(callback: (error?: Error) => void): void
  override connect(callback?: (error?: Error) => void): Promise<void> | void {
    const close = () => this.connection?.stream?.destroy()
    if (callback === undefined) return super.connect().catch((error: unknown) => (close(), Promise.reject(error)))
    super.connect((error) => {
      if (error !== undefined && error !== null) close()
      callback(error)
    })
  }
}

/**
 * The password in the .pgpass file (PGPASSFILE, else ~/.pgpass) for
 * `connection`, as libpq reads it: only a plain file no one else may read.
 */
const passwordFromFile = (connection: object) =>
  new Promise<string | undefined>((resolve) => {
    const file = getFileName(process.env)
    stat(file, (error, stats) => {
      if (error !== null || !stats.isFile() || (stats.mode & 0o077) !== 0) return resolve(undefined)
      getPassword(connection, createReadStream(file), resolve)
    })
  })

/**
 * The password, asked for only when the server wants one: PGPASSWORD when
 * set and not empty, else the .pgpass file, else an error that says so.
 */
export const passwordFromEnvironment = async (connection: { readonly user?: string }) => {
  const fromEnv = process.env.PGPASSWORD
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv
  const fromFile = await passwordFromFile(connection)
  if (fromFile !== undefined) return fromFile
  throw new Error(
    `the server asks for a password for user ${connection.user ?? "?"}: set PGPASSWORD or add it to ~/.pgpass (or the file PGPASSFILE names, mode 0600)`
  )
}

/** BIGINT columns (a volume's bytes) as numbers: they stay far below 2^53. */
export const int8AsNumber: Pg.TypeParsers = {
  getTypeParser: (oid, format) => (oid === INT8_OID ? Number : Pg.types.getTypeParser(oid, format))
}

/**
 * One LISTEN connection, open until it is lost: `wake` runs once it listens
 * (so a change made while no connection listened is read too) and on every
 * notification for `id`. Fails when it cannot connect.
 */
const listenUntilLost = (config: PgConfig, id: string, wake: () => void) =>
  Effect.scoped(Effect.gen(function*() {
    const lost = yield* Deferred.make<void>()
    const client = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          const client = new ClosingClient({ ...config, password: passwordFromEnvironment })
          client.on("error", () => Deferred.unsafeDone(lost, Exit.void))
          client.on("end", () => Deferred.unsafeDone(lost, Exit.void))
          await client.connect()
          return client
        },
        catch: (cause) => cause
      }),
      (client) => Effect.promise(() => client.end().catch(() => undefined)).pipe(Effect.timeoutOption(1000))
    )
    client.on("notification", (message) => {
      if (message.channel === STATUS_CHANNEL && message.payload === id) wake()
    })
    yield* Effect.tryPromise({ try: () => client.query(`LISTEN ${STATUS_CHANNEL}`), catch: (cause) => cause })
    wake()
    // A peer that vanished without closing the socket is found by a query that times out.
    const heartbeat = Effect.tryPromise(() => client.query("SELECT 1")).pipe(
      Effect.timeout(Duration.millis(config.query_timeout)),
      Effect.repeat(Schedule.spaced(Duration.seconds(2))),
      Effect.catchAll(() => Deferred.done(lost, Exit.void))
    )
    yield* Effect.raceFirst(Deferred.await(lost), heartbeat)
  }))

/**
 * The watched record's status: now, then on every change, without repeats;
 * ends when the record is gone. `readStatus` gives null for no record.
 */
export const watchStatus = (
  config: PgConfig,
  id: string,
  readStatus: Effect.Effect<BackupStatus | null, StorageError>,
  unreachable: Duration.Duration
): Stream.Stream<BackupStatus, CatalogError> => {
  const unreachableError = (cause: unknown) =>
    catalogError(
      "watch",
      id,
      `the catalog was unreachable for ${Duration.format(unreachable)}: ${
        isStorageError(cause) ? reasonOf(cause) : messageOf(cause)
      }`,
      cause
    )
  // Reconnects at once after a loss, then every 200 ms until `unreachable` has passed.
  const connections = (wake: () => void) =>
    Effect.gen(function*() {
      let failingSince: number | undefined
      for (;;) {
        const outcome = yield* Effect.either(listenUntilLost(config, id, wake))
        if (outcome._tag === "Right") {
          failingSince = undefined
          continue
        }
        failingSince ??= Date.now()
        if (Date.now() - failingSince >= Duration.toMillis(unreachable)) return yield* Effect.fail(unreachableError(outcome.left))
        yield* Effect.sleep(Duration.millis(200))
      }
    })
  // A read that fails (the connection just broke) is tried again within the same bound.
  const read = readStatus.pipe(
    Effect.retry({
      while: (error) => error._tag === "SqlError",
      schedule: Schedule.spaced(Duration.millis(200)).pipe(Schedule.upTo(unreachable))
    }),
    Effect.mapError((error) => (error._tag === "SqlError" ? unreachableError(error) : catalogError("watch", id, reasonOf(error), error)))
  )
  return Stream.asyncScoped<void, CatalogError>(
    (emit) => Effect.forkScoped(Effect.catchAll(connections(() => void emit.single(undefined)), (error) => Effect.promise(() => emit.fail(error)))),
    { bufferSize: 1, strategy: "sliding" } // a wake that waits stands for any number of them
  ).pipe(
    Stream.mapEffect(() => read),
    Stream.takeWhile((status): status is BackupStatus => status !== null),
    Stream.changes
  )
}
