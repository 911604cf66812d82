/**
 * Verify: check a backup without writing a volume. Every backup of the chain
 * has its metadata read and its object list compared; every object is
 * fetched, decompressed and md5-checked. With `full`, the volume the chain
 * restores to is rebuilt as a stream and hashed block by block against the
 * requested backup's sha256 file. Every problem found is reported, not only
 * the first.
 */
import { Effect, Either, Stream } from "effect"
import { hash } from "node:crypto"
import { makeSlotPool } from "../codec/slots.js"
import { dataObjects, type BackupMetadata, type DataObject } from "../domain/documents.js"
import type { BackupRecord } from "../domain/record.js"
import { BackupCatalog } from "../catalog/BackupCatalog.js"
import { ObjectStore } from "../store/ObjectStore.js"
import { flatten } from "./extents.js"
import { checkObjectList, readMetadata, readSha256File } from "./objects.js"
import { makeProgress, type ProgressOptions } from "./progress.js"
import { backupChain, fetchObject, largestObject } from "./restore.js"

export interface Problem {
  readonly backupId: string
  readonly object?: string
  readonly problem: string
}

export interface VerifyReport {
  readonly backupId: string
  readonly backups: number
  readonly objectsChecked: number
  readonly bytesChecked: number
  readonly full: boolean
  readonly problems: ReadonlyArray<Problem>
}

export interface VerifyOptions extends ProgressOptions {
  /** also rebuild the volume and check the sha256 list */
  readonly full?: boolean
  readonly concurrency?: number
}

const problemOf = (backupId: string, error: { readonly message: string; readonly object?: string | undefined }): Problem => ({
  backupId,
  ...(error.object === undefined ? {} : { object: error.object }),
  problem: error.message
})

/** Hashes a stream of volume bytes in sha blocks and compares with the list. */
const makeShaChecker = (backupId: string, blockSize: number, expected: ReadonlyArray<string>, problems: Array<Problem>) => {
  let pending: Array<Uint8Array> = []
  let pendingBytes = 0
  let index = 0
  const check = (block: Uint8Array) => {
    const actual = hash("sha256", block, "hex")
    if (index >= expected.length) problems.push({ backupId, problem: `the volume has more blocks than the sha256 file's ${expected.length}` })
    else if (expected[index] !== actual) problems.push({ backupId, problem: `sha block ${index} (offset ${index * blockSize}) does not match the sha256 file` })
    index++
  }
  const flush = () => {
    const block = Buffer.concat(pending)
    pending = []
    pendingBytes = 0
    check(block)
  }
  return {
    push: (bytes: Uint8Array) => {
      let rest = bytes
      while (rest.length > 0) {
        const take = Math.min(rest.length, blockSize - pendingBytes)
        // A part kept past this call is copied: `bytes` is a slot, reused once handed back.
        pending.push(take === rest.length && pendingBytes + take < blockSize ? rest.slice(0, take) : rest.subarray(0, take))
        pendingBytes += take
        rest = rest.subarray(take)
        if (pendingBytes === blockSize) flush()
      }
    },
    end: () => {
      if (pendingBytes > 0) flush()
      if (index < expected.length) problems.push({ backupId, problem: `the volume has ${index} sha blocks, the sha256 file lists ${expected.length}` })
    }
  }
}

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
    for (const record of chain) {
      const metadata = yield* Effect.either(readMetadata(record))
      if (Either.isLeft(metadata)) {
        problems.push(problemOf(record.id, metadata.left))
        continue
      }
      const listed = yield* Effect.either(checkObjectList(record, metadata.right))
      if (Either.isLeft(listed)) problems.push(problemOf(record.id, listed.left))
      plans.push({ record, metadata: metadata.right, objects: dataObjects(metadata.right) })
    }
    const full = (options.full ?? false) && plans.length === chain.length
    const shaFile = full ? yield* Effect.either(readSha256File(requested)) : undefined
    if (shaFile !== undefined && Either.isLeft(shaFile)) problems.push(problemOf(backupId, shaFile.left))
    const checker =
      shaFile !== undefined && Either.isRight(shaFile)
        ? makeShaChecker(backupId, shaFile.right.chunk_size, shaFile.right.sha256s, problems)
        : undefined

    // Visible objects in volume order feed the sha check; shadowed ones are only md5-checked.
    const layers = plans.map((plan) => plan.objects.map((object) => ({ ...object, plan })))
    const placed = flatten(layers)
    const visible = new Map(placed.map((p) => [p.object, p.visible]))
    const ordered = [...placed.map((p) => p.object), ...layers.flat().filter((o) => !visible.has(o))]
    const total = ordered.reduce((sum, o) => sum + o.length, 0)
    const progress = yield* makeProgress("verify", backupId, total, options)
    let bytesChecked = 0
    // A missing or corrupt visible object leaves a hole: the sha comparison stops there.
    let shaUsable = checker !== undefined
    const concurrency = Math.max(1, options.concurrency ?? store.defaults.concurrency)
    const slots = yield* makeSlotPool(largestObject(ordered), concurrency)
    yield* Stream.fromIterable(ordered).pipe(
      Stream.mapEffect(
        (object) =>
          Effect.flatMap(slots.take, (slot) =>
            fetchObject(object.plan.record, object.plan.metadata, object, slot).pipe(
              Effect.map((data) => ({ object, data })),
              Effect.mapError((error) => ({ object, error })),
              Effect.tapError(() => slots.give(slot)),
              Effect.either
            )
          ),
        { concurrency }
      ),
      Stream.runForEach((result) =>
        Effect.suspend(() => {
          if (Either.isLeft(result)) {
            const { object, error } = result.left
            problems.push({ backupId: object.plan.record.id, object: object.name, problem: error.message })
            if (visible.has(object)) shaUsable = false
            return Effect.void
          }
          const { object, data } = result.right
          bytesChecked += data.length
          if (shaUsable) {
            for (const range of visible.get(object) ?? []) {
              checker?.push(data.subarray(range.start - object.offset, range.end - object.offset))
            }
          }
          return Effect.zipRight(slots.give(data), progress.advance(object.length))
        })
      )
    )
    if (shaUsable) checker?.end()
    yield* progress.finish
    const report: VerifyReport = { backupId, backups: chain.length, objectsChecked: ordered.length, bytesChecked, full, problems }
    return report
  }).pipe(Effect.scoped, Effect.withSpan("chunked-backup.verify", { attributes: { backupId } }))
