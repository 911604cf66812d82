/**
 * Verify: check a backup without writing a volume. Every backup of the chain
 * has its metadata read and its object list compared; every object is
 * fetched, decompressed and md5-checked. With `full`, the volume the chain
 * restores to is rebuilt as a stream and hashed block by block against the
 * requested backup's sha256 file. Every problem found is reported, not only
 * the first.
 */
import { Effect, Either } from "effect"
import { hash } from "node:crypto"
import { makeSlotPool } from "../codec/slots.js"
import { dataObjects, type BackupMetadata, type DataObject } from "../domain/documents.js"
import type { Sha256Digests } from "../format/sha256Digests.js"
import { DIGEST_BYTES } from "./digests.js"
import type { BackupRecord } from "../domain/record.js"
import { BackupCatalog } from "../catalog/BackupCatalog.js"
import { ObjectStore } from "../store/ObjectStore.js"
import { flatten } from "./extents.js"
import { checkLayout, placeChain, volumeSizeOf } from "./layout.js"
import { checkObjectList, readMetadata, readSha256File } from "./objects.js"
import { makeProgress, type ProgressOptions } from "./progress.js"
import { GROUP_BYTES, GROUP_OBJECTS, groupPlacements, largestObject } from "./jobGroups.js"
import { backupChain, fetchObject, integrityError, jobSource } from "./restore.js"
import type { CodecPool } from "../codec/pool.js"
import { restoreInWorker, type RestoreObjectJob } from "../codec/poolJobs.js"
import { decompressionFailed } from "../codec/codec.js"

/** One problem verify found: the backup, the object (when one is to blame) and what is wrong. */
export interface Problem {
  readonly backupId: string
  readonly object?: string
  readonly problem: string
}

/** What verify checked and every problem it found (none: the backup restores as recorded). */
export interface VerifyReport {
  readonly backupId: string
  readonly backups: number
  readonly objectsChecked: number
  readonly bytesChecked: number
  readonly full: boolean
  readonly problems: ReadonlyArray<Problem>
}

/** Settings of a verify: `full` also rebuilds the volume and checks every sha256 block. */
export interface VerifyOptions extends ProgressOptions {
  /** also rebuild the volume and check the sha256 list */
  readonly full?: boolean
  readonly concurrency?: number
}

/** Problems reported at most: past this, one more line says how many were left out. */
export const MAX_PROBLEMS = 1000

const bounded = (problems: ReadonlyArray<Problem>): ReadonlyArray<Problem> =>
  problems.length <= MAX_PROBLEMS
    ? problems
    : [...problems.slice(0, MAX_PROBLEMS), { backupId: problems[0]!.backupId, problem: `and ${problems.length - MAX_PROBLEMS} more problems` }]

const problemOf = (backupId: string, error: { readonly message: string; readonly object?: string | undefined }): Problem => ({
  backupId,
  ...(error.object === undefined ? {} : { object: error.object }),
  problem: error.message
})

/**
 * Checks volume bytes against the sha256 list in whatever order they come:
 * a chain's objects interleave (an incremental's runs sit between the
 * visible ranges of a full object), so bytes are placed by offset. A whole
 * block is hashed at once; a block that arrives in parts waits, copied,
 * until it is complete.
 */
const makeShaChecker = (backupId: string, blockSize: number, expected: Sha256Digests, volumeSize: number, problems: Array<Problem>) => {
  const blocks = Math.ceil(volumeSize / blockSize)
  const checked = new Uint8Array(blocks)
  const partial = new Map<number, { readonly bytes: Uint8Array; filled: number }>()
  const lengthOf = (index: number) => Math.min(blockSize, volumeSize - index * blockSize)
  const check = (index: number, block: Uint8Array) => {
    checked[index] = 1
    if (index < expected.count && !hash("sha256", block, "buffer").equals(expected.digests.subarray(index * DIGEST_BYTES, (index + 1) * DIGEST_BYTES))) {
      problems.push({ backupId, problem: `sha block ${index} (offset ${index * blockSize}) does not match the sha256 file` })
    }
  }
  return {
    /** The volume's bytes at `offset`; `bytes` may be a slot, reused once this returns. */
    push: (offset: number, bytes: Uint8Array) => {
      let position = offset
      let rest = bytes
      while (rest.length > 0) {
        const index = Math.floor(position / blockSize)
        const within = position - index * blockSize
        const length = lengthOf(index)
        const take = Math.min(rest.length, length - within)
        if (within === 0 && take === length) {
          check(index, rest.subarray(0, take))
        } else {
          let part = partial.get(index)
          if (part === undefined) partial.set(index, (part = { bytes: new Uint8Array(length), filled: 0 }))
          part.bytes.set(rest.subarray(0, take), within)
          part.filled += take // visible ranges never overlap
          if (part.filled === length) {
            partial.delete(index)
            check(index, part.bytes)
          }
        }
        position += take
        rest = rest.subarray(take)
      }
    },
    end: () => {
      if (blocks !== expected.count) problems.push({ backupId, problem: `the volume has ${blocks} sha blocks, the sha256 file lists ${expected.count}` })
      const unchecked = checked.indexOf(0)
      if (unchecked !== -1) problems.push({ backupId, problem: `sha block ${unchecked} (offset ${unchecked * blockSize}) is not covered by the backup's objects` })
    }
  }
}

interface Item extends DataObject {
  readonly plan: { readonly record: BackupRecord; readonly metadata: BackupMetadata; readonly objects: ReadonlyArray<DataObject> }
}

/**
 * Checks `items` through codec worker jobs that decompress them into `slot`
 * and take their md5s, writing nothing. Each checked object's bytes go to
 * `onChecked` while the slot still holds them; every failure to `onProblem`,
 * and the check goes on with the next object.
 */
const checkGroup = (
  items: ReadonlyArray<Item>,
  slot: Uint8Array,
  onChecked: (object: Item, data: Uint8Array) => void,
  onProblem: (object: Item, error: { readonly message: string }) => void
): Effect.Effect<void, never, ObjectStore | CodecPool> =>
  Effect.gen(function* () {
    const store = yield* ObjectStore
    let rest = items
    while (rest.length > 0) {
      const jobs: Array<RestoreObjectJob> = []
      const inJob: Array<Item> = []
      let at = 0
      for (const object of rest) {
        const source = yield* Effect.either(jobSource(store, object.plan, object))
        if (Either.isLeft(source)) {
          onProblem(object, source.left)
          continue
        }
        jobs.push({ ...source.right, at, expectedLength: object.length, expectedMd5: object.md5, ranges: [] })
        inJob.push(object)
        at += object.length
      }
      if (jobs.length === 0) return
      const outcomes = yield* restoreInWorker({ objects: jobs, into: slot, fd: -1, sparse: false })
      rest = []
      for (const [i, outcome] of outcomes.entries()) {
        const object = inJob[i]!
        const data = slot.subarray(jobs[i]!.at, jobs[i]!.at + object.length)
        if (outcome._tag === "Checked" && outcome.length === object.length && outcome.md5 === object.md5) {
          onChecked(object, data)
          continue
        }
        rest = inJob.slice(i + 1)
        if (outcome._tag === "Failed" && outcome.stage === "read") {
          // The worker could not read the file: the store's own read says why, typed (or reads it after all).
          const fetched = yield* Effect.either(fetchObject(object.plan.record, object.plan.metadata, object, slot))
          if (Either.isRight(fetched)) onChecked(object, fetched.right)
          else onProblem(object, fetched.left)
          break
        }
        const failed = outcome._tag === "Failed"
            ? decompressionFailed(object.compression ?? "none", outcome.reason, object.name)
            : outcome._tag === "Checked"
              ? integrityError(object.plan.record.id, object, outcome)
              : { message: "unexpected sha256 outcome" }
        onProblem(object, failed)
        break
      }
    }
  })

/**
 * Checks backup `backupId` and its chain without writing a volume: the
 * documents, the object lists, and every object's length and md5 (with
 * `full`, every sha256 block of the volume too). Problems are reported in
 * the VerifyReport, all of them, not raised.
 */
export const verify = (backupId: string, options: VerifyOptions = {}) =>
  Effect.gen(function* () {
    const store = yield* ObjectStore
    const catalog = yield* BackupCatalog
    const requested = yield* catalog.get(backupId)
    const problems: Array<Problem> = []
    const chainResult = yield* Effect.either(backupChain(requested))
    if (Either.isLeft(chainResult)) {
      problems.push(problemOf(backupId, chainResult.left))
      return { backupId, backups: 0, objectsChecked: 0, bytesChecked: 0, full: options.full ?? false, problems }
    }
    const chain = chainResult.right
    const plans: Array<{ record: BackupRecord; metadata: BackupMetadata; objects: ReadonlyArray<DataObject> }> = []
    // A backup whose objects cannot be its volume's is reported, and its objects not read.
    let laidOut = true
    for (const record of chain) {
      const metadata = yield* Effect.either(readMetadata(record))
      if (Either.isLeft(metadata)) {
        problems.push(problemOf(record.id, metadata.left))
        continue
      }
      const listed = yield* Effect.either(checkObjectList(record, metadata.right))
      if (Either.isLeft(listed)) problems.push(problemOf(record.id, listed.left))
      const objects = dataObjects(metadata.right)
      const layout = yield* Effect.either(checkLayout(record, objects))
      if (Either.isLeft(layout)) {
        problems.push(problemOf(record.id, layout.left))
        laidOut = false
        continue
      }
      plans.push({ record, metadata: metadata.right, objects })
    }
    const volumeSize = yield* Effect.either(volumeSizeOf(requested))
    if (Either.isLeft(volumeSize)) {
      problems.push(problemOf(backupId, volumeSize.left))
      return { backupId, backups: chain.length, objectsChecked: 0, bytesChecked: 0, full: options.full ?? false, problems: bounded(problems) }
    }
    const size = volumeSize.right
    // Visible objects feed the sha check; shadowed ones are only md5-checked.
    const layers = plans.map((plan) => plan.objects.map((object) => ({ ...object, plan })))
    const placedResult = yield* Effect.either(placeChain(backupId, layers, size))
    if (Either.isLeft(placedResult) && laidOut && plans.length === chain.length) problems.push(problemOf(backupId, placedResult.left))
    const placed = Either.isRight(placedResult) ? placedResult.right : flatten(layers, size)
    const full = (options.full ?? false) && plans.length === chain.length && Either.isRight(placedResult)
    const shaFile = full ? yield* Effect.either(readSha256File(requested)) : undefined
    if (shaFile !== undefined && Either.isLeft(shaFile)) problems.push(problemOf(backupId, shaFile.left))
    const checker =
      shaFile !== undefined && Either.isRight(shaFile)
        ? makeShaChecker(backupId, shaFile.right.chunk_size, shaFile.right, size, problems)
        : undefined

    const visible = new Map(placed.map((p) => [p.object, p.visible]))
    const ordered = [...placed.map((p) => p.object), ...layers.flat().filter((o) => !visible.has(o))]
    const total = ordered.reduce((sum, o) => sum + o.length, 0)
    const progress = yield* makeProgress("verify", backupId, total, options)
    let bytesChecked = 0
    // A missing or corrupt visible object leaves a hole: the sha comparison is given up.
    let shaUsable = checker !== undefined
    const concurrency = Math.max(1, options.concurrency ?? store.defaults.concurrency)
    const slots = yield* makeSlotPool(Math.max(largestObject(ordered), GROUP_BYTES), concurrency)
    const onChecked = (object: Item, data: Uint8Array) => {
      bytesChecked += data.length
      if (shaUsable) {
        for (const range of visible.get(object) ?? []) {
          checker?.push(range.start, data.subarray(range.start - object.offset, range.end - object.offset))
        }
      }
    }
    const onProblem = (object: Item, error: { readonly message: string }) => {
      problems.push({ backupId: object.plan.record.id, object: object.name, problem: error.message })
      if (visible.has(object)) shaUsable = false
    }
    // Small objects share a worker job, as in a restore: a backup of many small objects is checked in few round trips.
    const groups = groupPlacements(ordered.map((object) => ({ object })), slots.size, GROUP_OBJECTS)
    // Effect.forEach, not a Stream's concurrent mapEffect, which cost about a millisecond per group.
    yield* Effect.forEach(
      groups,
      (group) =>
        Effect.acquireUseRelease(slots.take, (slot) => checkGroup(group.map((g) => g.object), slot, onChecked, onProblem), slots.give).pipe(
          Effect.zipRight(progress.advance(group.reduce((sum, g) => sum + g.object.length, 0), group.length))
        ),
      { concurrency, discard: true }
    )
    if (shaUsable) checker?.end()
    yield* progress.finish
    const report: VerifyReport = { backupId, backups: chain.length, objectsChecked: ordered.length, bytesChecked, full, problems: bounded(problems) }
    return report
  }).pipe(Effect.scoped, Effect.withSpan("chunked-backup.verify", { attributes: { backupId } }))

/** Every error a verify can end with (problems in the backup itself are in the VerifyReport instead). */
export type VerifyError = Effect.Effect.Error<ReturnType<typeof verify>>
