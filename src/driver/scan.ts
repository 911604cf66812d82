/**
 * Scan: rebuild lost catalog records from the store. Every `_metadata`
 * object in the scanned containers names a backup; each is checked the way
 * a restore checks it before reading data (documents decoded and
 * consistent, the object list as the metadata says, the objects laid out
 * inside the volume), without downloading data objects. What passes, and
 * whose parent chain passes too, gets a record in status `available`, as
 * Cinder would have written it; what fails is reported and not imported. A
 * backup already in the catalog is left as it is, so scanning twice imports
 * nothing the second time.
 */
import { Effect, Either } from "effect"
import { BackupCatalog } from "../catalog/BackupCatalog.js"
import { dataObjects, type BackupMetadata } from "../domain/documents.js"
import type { Sha256Digests } from "../format/sha256Digests.js"
import { InvalidBackup, ScanFoundProblems } from "../domain/errors.js"
import { newBackupRecord, sizeInGiB, type BackupRecord } from "../domain/record.js"
import { clip } from "../format/untrusted.js"
import { checkName, ObjectStore } from "../store/ObjectStore.js"
import { checkLayout } from "./layout.js"
import { checkObjectList, readMetadata, readSha256File } from "./objects.js"

/** Settings of a scan: one container (default: the store's), and whether to write records. */
export interface ScanOptions {
  /** scan only this container (default: every container the store knows of, else its default one) */
  readonly container?: string
  /** check and report, create no record */
  readonly dryRun?: boolean
  /** called after each backup is checked, with how many of how many */
  readonly onProgress?: (checked: number, total: number) => void
}

/** One backup found in the store and what scan made of it. */
export interface ScanEntry {
  readonly backupId: string
  readonly container: string
  /** the object-name prefix (the record's service_metadata) */
  readonly prefix: string
  readonly parentId: string | null
  /**
   * imported: a record was created (or would be, with dryRun); existing: the
   * catalog has it already; invalid: it failed a check; orphan: its parent
   * is missing, broken, or an orphan itself, or its chain is a cycle
   */
  readonly outcome: "imported" | "existing" | "invalid" | "orphan"
  /** why it was not imported */
  readonly reason?: string
}

/** What a scan found, backup by backup, parents before their incrementals. */
export interface ScanReport {
  readonly containers: ReadonlyArray<string>
  readonly dryRun: boolean
  readonly entries: ReadonlyArray<ScanEntry>
}

const METADATA_SUFFIX = "_metadata"
/** Cinder's prefixes (posix and Swift/S3 alike) end in `_backup_<id>`. */
const BACKUP_ID_IN_PREFIX = /_backup_([^/]+)$/
const AZ_IN_PREFIX = /(?:^|\/)az_([^/]*)_backup_[^/]+$/
/** Python's str() of an aware datetime: `2026-11-26 04:04:46[.123456]+00:00`. */
const PYTHON_DATETIME = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(\.\d{1,6})?([+-]\d{2}:\d{2}|Z)?$/

/** The instant of a `created_at` as Cinder writes it, or undefined when it is not one. */
export const parseCinderTimestamp = (text: string): Date | undefined => {
  const match = PYTHON_DATETIME.exec(text)
  if (match === null) return undefined
  const [, day, time, fraction = "", offset = "+00:00"] = match
  const millis = fraction === "" ? "" : fraction.slice(0, 4).padEnd(4, "0")
  const date = new Date(`${day}T${time}${millis}${offset === "Z" ? "+00:00" : offset}`)
  return Number.isNaN(date.getTime()) ? undefined : date
}

/** A backup whose documents decoded and agree with each other and the listing; its size is still to be derived. */
interface Candidate {
  readonly record: BackupRecord
  readonly metadata: BackupMetadata
  readonly shaFile: Sha256Digests
}

const reasonOf = (error: { readonly message: string }) => error.message

/**
 * The volume's size in bytes from the documents. A full backup's objects
 * tile the volume, so it ends where they end. An incremental covers only
 * changed runs: a run reaching into the last sha block ends the volume; else
 * that block is unchanged, so as long as the parent's (a volume never grows
 * between a backup and its incrementals), the parent's size cut to the
 * blocks the sha256 file lists.
 */
const volumeSizeFrom = (candidate: Candidate, parentSize: number | undefined): number => {
  const ends = dataObjects(candidate.metadata).map((object) => object.offset + object.length)
  const end = Math.max(0, ...ends)
  if (parentSize === undefined) return end
  const blockSize = candidate.shaFile.chunk_size
  const blocks = candidate.shaFile.count
  return end > (blocks - 1) * blockSize ? end : Math.min(parentSize, blocks * blockSize)
}

/** Checks a backup's documents and object list (names, ids, versions, the listing), reading no data object. */
const checkDocuments = (container: string, prefix: string, backupId: string) =>
  Effect.gen(function* () {
    const store = yield* ObjectStore
    const probe = newBackupRecord({ id: backupId, volume_id: "", volume_size_bytes: 1, container, service_metadata: prefix })
    const metadata = yield* readMetadata(probe)
    const shaFile = yield* readSha256File(probe)
    const invalid = (reason: string) => new InvalidBackup({ backupId, reason })
    if (shaFile.backup_id !== backupId) return yield* invalid(`the sha256 file belongs to backup ${clip(shaFile.backup_id)}`)
    if (shaFile.volume_id !== metadata.volume_id) {
      return yield* invalid(`the sha256 file is of volume ${clip(shaFile.volume_id)}, the metadata of ${clip(metadata.volume_id)}`)
    }
    if (metadata.parent_id === backupId) return yield* invalid("the backup names itself as its parent")
    for (const object of dataObjects(metadata)) {
      // Before the listing is compared: a hostile name is reported as what it is.
      yield* checkName(object.name)
    }
    yield* checkObjectList(probe, metadata)
    const createdAt = parseCinderTimestamp(metadata.created_at)
    if (createdAt === undefined) return yield* invalid(`created_at ${JSON.stringify(clip(metadata.created_at, 60))} is not a date`)
    const record = newBackupRecord({
      id: backupId,
      volume_id: metadata.volume_id,
      parent_id: metadata.parent_id,
      container,
      service_metadata: prefix,
      status: "available",
      volume_size_bytes: 1,
      object_count: dataObjects(metadata).length,
      display_name: metadata.backup_name,
      display_description: metadata.backup_description,
      created_at: createdAt,
      availability_zone: AZ_IN_PREFIX.exec(prefix)?.[1] ?? null,
      service: store.defaults.service
    })
    return { record, metadata, shaFile } satisfies Candidate
  })

/** The record with its volume size derived, after the layout and sha256 checks a restore would make. */
const sized = (candidate: Candidate, parentSize: number | undefined) =>
  Effect.gen(function* () {
    const bytes = volumeSizeFrom(candidate, parentSize)
    const record: BackupRecord = { ...candidate.record, volume_size_bytes: bytes, size: sizeInGiB(bytes) }
    yield* checkLayout(record, dataObjects(candidate.metadata))
    const { chunk_size: blockSize, count } = candidate.shaFile
    if (count !== Math.ceil(bytes / blockSize)) {
      return yield* new InvalidBackup({
        backupId: record.id,
        reason: `the sha256 file lists ${count} blocks of ${blockSize} bytes; the ${bytes}-byte volume has ${Math.ceil(bytes / blockSize)}`
      })
    }
    return record
  })

/** The containers to scan: the one named, or those the store lists, or its default one. */
const containersToScan = (options: ScanOptions) =>
  Effect.gen(function* () {
    const store = yield* ObjectStore
    if (options.container !== undefined) return [options.container]
    if (store.containers !== undefined) return yield* store.containers
    return [store.containerFor(newBackupRecord({ id: "scan", volume_id: "scan", volume_size_bytes: 1 }))]
  })

/**
 * Finds every backup in the store's containers and creates the catalog
 * records that are missing (none with `dryRun`). Broken backups and their
 * dependents are reported in the ScanReport, not raised.
 */
export const scan = (options: ScanOptions = {}) =>
  Effect.gen(function* () {
    const store = yield* ObjectStore
    const catalog = yield* BackupCatalog
    const containers = yield* containersToScan(options)
    const known = new Map((yield* catalog.list()).map((record) => [record.id, record]))

    const found: Array<{ container: string; prefix: string; backupId: string | undefined; object: string }> = []
    for (const container of containers) {
      yield* checkName(container)
      const names = yield* store.list(container, "")
      for (const object of names.filter((name) => name.endsWith(METADATA_SUFFIX))) {
        const prefix = object.slice(0, -METADATA_SUFFIX.length)
        found.push({ container, prefix, backupId: BACKUP_ID_IN_PREFIX.exec(prefix)?.[1], object })
      }
    }

    const entries = new Map<string, ScanEntry>()
    const rejected: Array<ScanEntry> = []
    const candidates = new Map<string, Candidate>()
    const firstSeen = new Map<string, string>()
    const toCheck: typeof found = []
    for (const item of found) {
      const entry = { backupId: item.backupId ?? clip(item.object), container: item.container, prefix: item.prefix, parentId: null }
      if (item.backupId === undefined) {
        rejected.push({ ...entry, outcome: "invalid", reason: `${clip(item.object)} does not name a backup (<prefix>_backup_<id>_metadata)` })
        continue
      }
      const elsewhere = firstSeen.get(item.backupId)
      if (elsewhere !== undefined) {
        rejected.push({ ...entry, outcome: "invalid", reason: `backup ${item.backupId} is also in ${elsewhere}; only that one was considered` })
        continue
      }
      firstSeen.set(item.backupId, `${item.container}/${item.prefix}`)
      const record = known.get(item.backupId)
      if (record !== undefined) entries.set(item.backupId, { ...entry, parentId: record.parent_id, outcome: "existing" })
      else toCheck.push(item)
    }
    let checked = 0
    const results = yield* Effect.forEach(
      toCheck,
      (item) =>
        Effect.zipRight(checkName(item.object), checkDocuments(item.container, item.prefix, item.backupId!)).pipe(
          Effect.either,
          Effect.tap(() => options.onProgress?.(++checked, toCheck.length))
        ),
      { concurrency: store.defaults.concurrency }
    )
    // In listing order, whatever order the checks finished in: the report reads the same on every run.
    for (const [i, result] of results.entries()) {
      const item = toCheck[i]!
      if (Either.isRight(result)) candidates.set(item.backupId!, result.right)
      else rejected.push({ backupId: item.backupId!, container: item.container, prefix: item.prefix, parentId: null, outcome: "invalid", reason: reasonOf(result.left) })
    }
    const broken = new Set(rejected.map((entry) => entry.backupId))

    const entryOf = (id: string) => {
      const { record } = candidates.get(id)!
      return { backupId: id, container: record.container!, prefix: record.service_metadata!, parentId: record.parent_id }
    }
    // Parents first: a backup's size follows from its parent's, and its record may only exist once its parent's does.
    const ordered: Array<BackupRecord> = []
    const sizes = new Map<string, number>()
    const settle = (id: string, path: ReadonlyArray<string>): Effect.Effect<number | undefined> =>
      Effect.gen(function* () {
        const record = known.get(id)
        if (record !== undefined) return record.volume_size_bytes
        if (sizes.has(id)) return sizes.get(id)
        if (entries.has(id)) return undefined
        const candidate = candidates.get(id)!
        const entry = entryOf(id)
        const orphan = (reason: string) => {
          entries.set(id, { ...entry, outcome: "orphan", reason })
          return undefined
        }
        const parentId = candidate.record.parent_id
        let parentSize: number | undefined
        if (parentId !== null) {
          if (path.includes(parentId)) {
            // Every member of the cycle is reported with the whole cycle; the callers above see their entry set.
            const cycle = [...path.slice(path.indexOf(parentId)), id]
            const reason = `the parent chain is a cycle: ${[...cycle, parentId].join(" -> ")}`
            for (const member of cycle) entries.set(member, { ...entryOf(member), outcome: "orphan", reason })
            return undefined
          }
          if (broken.has(parentId)) return orphan(`parent backup ${parentId} is broken`)
          if (!known.has(parentId) && !candidates.has(parentId)) return orphan(`parent backup ${parentId} is not in the store or the catalog`)
          parentSize = yield* settle(parentId, [...path, id])
          if (entries.has(id)) return undefined // a member of a cycle found above
          if (parentSize === undefined) return orphan(`parent backup ${parentId} is ${entries.get(parentId)?.outcome === "invalid" ? "broken" : "an orphan"}`)
          // An incremental is of its parent's volume (Cinder refuses any other); restoring it over another volume's chain would mix the two.
          const parentVolume = known.get(parentId)?.volume_id ?? candidates.get(parentId)!.record.volume_id
          if (parentVolume !== candidate.record.volume_id) {
            broken.add(id)
            entries.set(id, { ...entry, outcome: "invalid", reason: `it is a backup of volume ${candidate.record.volume_id}, but its parent backup ${parentId} is of volume ${parentVolume}` })
            return undefined
          }
        }
        const result = yield* Effect.either(sized(candidate, parentSize))
        if (Either.isLeft(result)) {
          broken.add(id)
          entries.set(id, { ...entry, outcome: "invalid", reason: reasonOf(result.left) })
          return undefined
        }
        sizes.set(id, result.right.volume_size_bytes)
        ordered.push(result.right)
        entries.set(id, { ...entry, outcome: "imported" })
        return result.right.volume_size_bytes
      })
    for (const id of candidates.keys()) yield* settle(id, [])

    if (options.dryRun !== true) {
      // A record another scan (or host) created meanwhile is left as it is, as one found at the start would be.
      const createOrFind = (record: BackupRecord) =>
        catalog.create(record).pipe(
          Effect.catchTag("CatalogError", (error) =>
            Effect.flatMap(Effect.either(catalog.get(record.id)), (found) =>
              Either.isRight(found) ? Effect.sync(() => void entries.set(record.id, { ...entries.get(record.id)!, outcome: "existing" })) : Effect.fail(error)
            )
          )
        )
      yield* Effect.forEach(ordered, createOrFind, { discard: true })
    }
    const report: ScanReport = {
      containers,
      dryRun: options.dryRun === true,
      entries: [...ordered.map((record) => entries.get(record.id)!), ...[...entries.values()].filter((e) => e.outcome !== "imported"), ...rejected]
    }
    return report
  }).pipe(Effect.withSpan("chunked-backup.scan"))

/**
 * What a scan left out, as one error, broken backups before their orphans:
 * undefined when every backup found was imported or already known.
 */
export const scanProblems = (report: ScanReport): ScanFoundProblems | undefined => {
  const left = [...report.entries.filter((e) => e.outcome === "invalid"), ...report.entries.filter((e) => e.outcome === "orphan")]
  return left.length === 0 ? undefined : new ScanFoundProblems({ problems: left.map((e) => ({ backupId: e.backupId, problem: e.reason ?? e.outcome })) })
}

/** Every error a scan can end with (problems in the backups themselves are in the ScanReport instead). */
export type ScanError = Effect.Effect.Error<ReturnType<typeof scan>>
