/**
 * Errors of the SQL catalogs (SQLite, PostgreSQL): driver, decoding and
 * migration errors become CatalogError with the driver's code and cause.
 */
import type * as Migrator from "@effect/sql/Migrator"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Predicate } from "effect"
import type { ParseError } from "effect/ParseResult"
import { CatalogError } from "../domain/errors.js"

export type StorageError = SqlError | ParseError | Migrator.MigrationError

export const isStorageError = (error: unknown): error is StorageError =>
  Predicate.isTagged(error, "SqlError") || Predicate.isTagged(error, "ParseError") ||
  Predicate.isTagged(error, "MigrationError")

export const messageOf = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

/** The driver's error code (better-sqlite3's SqliteError, node-postgres's SQLSTATE or a socket's errno), found on the error or its cause. */
export const codeOf = (cause: unknown): string | undefined => {
  for (let e = cause, depth = 0; e !== null && typeof e === "object" && depth < 3; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === "string") return code
  }
  return undefined
}

/** Codes of a write the catalog's disk had no room for (SQLite says "disk I/O error" when a journal cannot be made). */
const DISK_FULL = /^(SQLITE_FULL|SQLITE_IOERR|ENOSPC|53100$)/

export const catalogError = (operation: string, backupId: string | undefined, reason: string, cause?: unknown) => {
  const code = codeOf(cause)
  return new CatalogError({
    operation,
    reason: code !== undefined && DISK_FULL.test(code) ? `${reason} (${code}: is the disk holding the catalog full?)` : reason,
    ...(backupId === undefined ? {} : { backupId }),
    ...(cause === undefined ? {} : { cause }),
    ...(code === undefined ? {} : { code })
  })
}

export const reasonOf = (error: StorageError) =>
  error._tag === "SqlError"
    ? `${error.message}: ${messageOf(error.cause)}` // the driver's message says what went wrong
    : error._tag === "ParseError"
    ? `malformed row: ${error.message}`
    : error.message

/** Turns driver, decoding and migration errors into CatalogError; other errors pass through. */
export const storageErrors = (operation: string, backupId?: string) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, Exclude<E, StorageError> | CatalogError, R> =>
  Effect.mapError(effect, (error) =>
    isStorageError(error) ? catalogError(operation, backupId, reasonOf(error), error) : error as Exclude<E, StorageError>
  )
