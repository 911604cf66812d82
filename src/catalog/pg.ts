/**
 * The PostgreSQL catalog's public entry. The implementation
 * (./pgCatalog.ts) is loaded when a layer is built: @effect/sql-pg and
 * node-postgres are optional peers, so importing the package must not need them.
 */
import { type Duration, Effect, Layer } from "effect"
import type { CatalogError } from "../domain/errors.js"
import type { BackupCatalog } from "./BackupCatalog.js"
import { catalogError, messageOf } from "./sqlErrors.js"

/** Settings of the PostgreSQL catalog. */
export interface PgCatalogOptions {
  /** How long opening a connection may take (default 5 s). */
  readonly connectTimeout?: Duration.DurationInput
  /** How long one statement may take before it is a CatalogError (default 30 s). */
  readonly queryTimeout?: Duration.DurationInput
  /**
   * How long `watch` keeps reconnecting to a catalog it lost before it fails
   * with CatalogError (default 10 s).
   */
  readonly unreachableTimeout?: Duration.DurationInput
  /** Connections in the pool (default 4). */
  readonly maxConnections?: number
}

/**
 * The PostgreSQL catalog at `url` (postgres://USER@HOST:PORT/DB, `sslmode`
 * honoured), shared by many hosts; created and migrated when needed. The
 * password comes from PGPASSWORD or a .pgpass file, asked for only when the
 * server wants one.
 */
export const layerPgCatalog = (url: string, options: PgCatalogOptions = {}): Layer.Layer<BackupCatalog, CatalogError> =>
  Layer.unwrapEffect(Effect.map(
    Effect.tryPromise({
      try: () => import("./pgCatalog.js"),
      catch: (cause) =>
        catalogError("open", undefined, `the PostgreSQL catalog needs @effect/sql-pg (npm install @effect/sql-pg): ${messageOf(cause)}`, cause)
    }),
    (implementation) => implementation.layerPgCatalogNow(url, options)
  ))
