/** chunked-backup: Cinder-format chunked backups as Effect programs over services. */
export * from "./domain/errors.js"
export * from "./domain/record.js"
export * from "./domain/documents.js"
export * from "./domain/compression.js"
export * from "./format/documents.js"
export { pythonJsonDumps } from "./format/pythonJson.js"
export { compressObject, decompressObject } from "./codec/codec.js"
export { CodecPool, layerCodecPool, makeCodecPool, defaultPoolSize, type CodecPoolOptions } from "./codec/pool.js"
export * from "./store/errors.js"
export { make, ObjectStore, swiftStylePrefix, type ListedObject, type ObjectStoreBackend, type StoreDefaults } from "./store/ObjectStore.js"
export { layerMemory, makeMemory, type MemoryStoreOptions } from "./store/memory.js"
export { layerPosix, makePosix, type PosixStoreOptions } from "./store/posix.js"
export { layerSwift, makeSwift, type SwiftAuth, type SwiftStoreOptions } from "./store/swift.js"
export { layerS3, makeS3, type S3StoreOptions } from "./store/s3.js"
export * from "./store/storeConfig.js"
export { certificateProblem } from "./store/certificates.js"
export { layerHttpClientTls, type TlsOptions } from "./store/tls.js"
export * from "./catalog/BackupCatalog.js"
export { layerMemoryCatalog, makeMemoryCatalog } from "./catalog/memory.js"
export { progressStream, type ProgressEvent, type ProgressOptions } from "./driver/progress.js"
export * from "./driver/VolumeMetadata.js"
export { backup, runBackup, type BackupError, type BackupOptions, type BackupRequirements } from "./driver/backup.js"
export { fileSource, streamSource, type VolumeSource } from "./driver/volumeSource.js"
export { dirtyBitmapContext, nbdSource, type NbdSourceOptions } from "./driver/nbdSource.js"
export { connect as connectNbd, NBD_STATE_DIRTY, NBD_STATE_HOLE, NBD_STATE_ZERO, type BlockStatusExtent, type NbdConnection } from "./nbd/client.js"
export { NbdError } from "./nbd/errors.js"
export { isNbdUri, parseNbdUri, type NbdAddress } from "./nbd/uri.js"
export { restore, restoreStream, backupChain, type RestoreError, type RestoreOptions, type RestoreRequirements, type RestoreResult } from "./driver/restore.js"
export { fileTarget, orderedTarget, writableTarget, type OpenTarget, type VolumeTarget } from "./driver/volumeTarget.js"
export { deleteBackup, type DeleteError, type DeleteResult } from "./driver/delete.js"
export { copy, type CopiedBackup, type CopyError, type CopyOptions, type CopyReport, type CopyRequirements } from "./driver/copy.js"
export { CopyDestination, layerCopyDestination, type CopyDestinationServices } from "./driver/copyDestination.js"
export { verify, type Problem, type VerifyError, type VerifyOptions, type VerifyReport } from "./driver/verify.js"
export { cleanup, type CleanupAction, type CleanupError } from "./driver/cleanup.js"
export { parseCinderTimestamp, scan, scanProblems, type ScanEntry, type ScanError, type ScanOptions, type ScanReport } from "./driver/scan.js"
export { checkPolicy, prune, type PruneError, type PruneOptions, type PruneReport } from "./driver/prune.js"
export {
  applyPolicy,
  COUNT_RULES,
  formatCalendarDuration,
  isEmptyPolicy,
  parseCalendarDuration,
  planRetention,
  type CalendarDuration,
  type CountRule,
  type Decision,
  type PlanEntry,
  type RetentionPlan,
  type RetentionPolicy
} from "./driver/retention.js"
export { storedSizeOf, type StoredSize } from "./driver/storedSize.js"
export type { LeaseOptions } from "./driver/lease.js"
export { exportRecord, importRecord, type ExportedRecord } from "./format/record.js"
export { layerSqliteCatalog, makeSqliteCatalog, type SqliteCatalogOptions } from "./catalog/sqlite.js"
export { layerPgCatalog, type PgCatalogOptions } from "./catalog/pg.js"
export {
  decorate,
  DEFAULT_RETRY_BUDGET,
  layerConcurrencyLimit,
  layerRetry,
  layerTracing,
  parseRetryBudget,
  retrySchedule,
  withConcurrencyLimit,
  withRetry,
  withTracing,
  type RetryPolicy,
  type StoreOperation
} from "./store/decorators.js"
export { layerFaults, withFaults, type FaultKind, type FaultPlan, type FaultRule, type InjectedFault } from "./store/faults.js"
