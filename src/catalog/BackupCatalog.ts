/**
 * BackupCatalog: where backup records live (Cinder's database). `watch`
 * streams a record's status so long operations can be cancelled by
 * interruption instead of polling inside their loops.
 */
import { Context, Effect, Stream } from "effect"
import type { BackupNotFound, CatalogError } from "../domain/errors.js"
import type { BackupRecord, BackupStatus } from "../domain/record.js"

/** Which records `list` returns; an absent field does not filter. */
export interface ListFilter {
  readonly volumeId?: string
  readonly statuses?: ReadonlyArray<BackupStatus>
}

/** Where backup records live: get, list, create, compare-and-set transitions, leases, and a status watch. */
export interface BackupCatalog {
  readonly get: (id: string) => Effect.Effect<BackupRecord, BackupNotFound | CatalogError>
  /**
   * Records in creation order: all, one volume's, or those in some statuses
   * (both filters together: both hold). A status filter is what keeps a
   * backup's start from reading every record a fleet's catalog holds.
   */
  readonly list: (filter?: ListFilter) => Effect.Effect<ReadonlyArray<BackupRecord>, CatalogError>
  /** Adds a new record; fails with CatalogError when the id exists. */
  readonly create: (record: BackupRecord) => Effect.Effect<void, CatalogError>
  /** Applies `change` to the stored record atomically and returns the result. */
  readonly update: (
    id: string,
    change: (record: BackupRecord) => BackupRecord
  ) => Effect.Effect<BackupRecord, BackupNotFound | CatalogError>
  /**
   * Sets the status only when the current one is in `from` (compare-and-set);
   * returns false and changes nothing otherwise.
   */
  readonly transition: (
    id: string,
    from: ReadonlyArray<BackupStatus>,
    to: BackupStatus,
    failReason?: string
  ) => Effect.Effect<boolean, BackupNotFound | CatalogError>
  /**
   * Deletes the record only when its status is in `from`; returns false and
   * changes nothing otherwise, or when there is no such record. For records
   * that never held objects (a backup refused before it started).
   */
  readonly remove: (id: string, from: ReadonlyArray<BackupStatus>) => Effect.Effect<boolean, CatalogError>
  /** The current status, then every change, without repeats. Ends if the record disappears. */
  readonly watch: (id: string) => Stream.Stream<BackupStatus, CatalogError>
}

/** The BackupCatalog service's tag. */
export const BackupCatalog = Context.GenericTag<BackupCatalog>("chunked-backup/BackupCatalog")

/** Records that name `id` as their parent and still exist. */
export const dependentsOf = (catalog: BackupCatalog, id: string) =>
  Effect.map(catalog.list(), (records) =>
    records.filter((record) => record.parent_id === id && record.status !== "deleted")
  )
