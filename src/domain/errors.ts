/**
 * Typed errors: one tagged class per cause, each carrying the ids and object
 * names a person needs to act on it. Defects are reserved for bugs.
 */
import { Data } from "effect"

/** A backup's documents or objects are not what the format requires. */
export class InvalidBackup extends Data.TaggedError("InvalidBackup")<{
  readonly backupId: string
  readonly reason: string
  readonly object?: string
}> {
  override get message() {
    const where = this.object === undefined ? "" : ` (object ${this.object})`
    return `backup ${this.backupId} is invalid${where}: ${this.reason}`
  }
}

/** The metadata names a format version this library cannot restore. */
export class UnsupportedVersion extends Data.TaggedError("UnsupportedVersion")<{
  readonly backupId: string
  readonly version: string
}> {
  override get message() {
    return `backup ${this.backupId} has metadata version ${JSON.stringify(this.version)}; only 1.0.0 is supported`
  }
}

/** The request itself is wrong (sizes, names, options), before anything is written. */
export class InvalidRequest extends Data.TaggedError("InvalidRequest")<{
  readonly reason: string
}> {
  override get message() {
    return this.reason
  }
}

/** No catalog record with this id. */
export class BackupNotFound extends Data.TaggedError("BackupNotFound")<{
  readonly backupId: string
}> {
  override get message() {
    return `backup ${this.backupId} not found in the catalog`
  }
}

/** No catalog where the options point: the repository was never made (or the path is wrong). */
export class RepositoryNotFound extends Data.TaggedError("RepositoryNotFound")<{
  readonly catalog: string
}> {
  override get message() {
    return `no repository here: the catalog ${this.catalog} does not exist (back up or import a record to make one, or point --repo/--catalog at one)`
  }
}

/** The catalog itself failed (I/O, corruption, locking). */
export class CatalogError extends Data.TaggedError("CatalogError")<{
  readonly operation: string
  readonly reason: string
  readonly backupId?: string
  /** the database's error code, e.g. "SQLITE_CANTOPEN", "SQLITE_FULL", when it gave one */
  readonly code?: string
  /** the underlying error (the driver's, the decoder's), to look into beyond the message */
  readonly cause?: unknown
}> {
  override get message() {
    const which = this.backupId === undefined ? "" : ` for backup ${this.backupId}`
    return `catalog ${this.operation} failed${which}: ${this.reason}`
  }
}

/**
 * A decompressed object does not hash to the md5 recorded in the metadata,
 * or (`digest: "sha256"`) one of its sha blocks not to the sha256 list's.
 */
export class IntegrityError extends Data.TaggedError("IntegrityError")<{
  readonly backupId: string
  readonly object: string
  readonly expected: string
  readonly actual: string
  readonly digest?: "md5" | "sha256"
}> {
  override get message() {
    return `backup ${this.backupId}: object ${this.object} is corrupt (${this.digest ?? "md5"} ${this.actual}, expected ${this.expected})`
  }
}

/** The backup was cancelled (its status became deleting or deleted); what it wrote is gone. */
export class BackupCancelled extends Data.TaggedError("BackupCancelled")<{
  readonly backupId: string
}> {
  override get message() {
    return `backup ${this.backupId} was cancelled; the objects it wrote were deleted`
  }
}

/** The restore was cancelled: the requested backup left the `restoring` status. */
export class RestoreCancelled extends Data.TaggedError("RestoreCancelled")<{
  readonly backupId: string
  readonly status: string
}> {
  override get message() {
    return `restore of backup ${this.backupId} was cancelled (status became ${this.status})`
  }
}

/** An object (de)compression failed: unknown algorithm or corrupt compressed bytes. */
export class CompressionError extends Data.TaggedError("CompressionError")<{
  readonly algorithm: string
  readonly reason: string
  readonly object?: string
}> {
  override get message() {
    const where = this.object === undefined ? "" : ` of object ${this.object}`
    return `${this.algorithm} ${this.reason}${where}`
  }
}

/** Reading or writing the volume (file or block device) failed. */
export class VolumeError extends Data.TaggedError("VolumeError")<{
  readonly path: string
  readonly reason: string
  /** the system's error code, e.g. "ENOENT", "EACCES", "EISDIR", "ENOSPC", when one caused it */
  readonly code?: string
  /** the underlying error (a PlatformError, the stream's failure) */
  readonly cause?: unknown
}> {
  override get message() {
    return `volume ${this.path}: ${this.reason}`
  }
}

/** Restoring the volume metadata (`volume_meta`) was refused. */
export class VolumeMetadataError extends Data.TaggedError("VolumeMetadataError")<{
  readonly backupId: string
  readonly reason: string
}> {
  override get message() {
    return `backup ${this.backupId}: volume metadata: ${this.reason}`
  }
}

/** Another backup of the same volume is running. */
export class VolumeBusy extends Data.TaggedError("VolumeBusy")<{
  readonly volumeId: string
  /** the backup that is running */
  readonly backupId: string
}> {
  override get message() {
    return `volume ${this.volumeId} is being backed up by backup ${this.backupId}; try again when it has finished`
  }
}

/** `verify` found problems; the report lists every one. */
export class VerificationFailed extends Data.TaggedError("VerificationFailed")<{
  readonly backupId: string
  readonly problems: ReadonlyArray<{ readonly backupId: string; readonly object?: string; readonly problem: string }>
}> {
  override get message() {
    const first = this.problems[0]
    const more = this.problems.length > 1 ? ` (and ${this.problems.length - 1} more)` : ""
    return `backup ${this.backupId} failed verification: ${first === undefined ? "" : `${first.object ?? first.backupId}: ${first.problem}`}${more}`
  }
}

/** `scan` found backups in the store it could not import (broken or orphaned); the report lists each. */
export class ScanFoundProblems extends Data.TaggedError("ScanFoundProblems")<{
  readonly problems: ReadonlyArray<{ readonly backupId: string; readonly problem: string }>
}> {
  override get message() {
    const first = this.problems[0]
    const more = this.problems.length > 1 ? ` (and ${this.problems.length - 1} more)` : ""
    const named = first === undefined ? "" : first.problem.includes(`backup ${first.backupId}`) ? first.problem : `backup ${first.backupId}: ${first.problem}`
    return `scan left ${this.problems.length} backup(s) out: ${named}${more}`
  }
}
