/**
 * The checks every reader of a backup makes before it uses the backup's
 * documents (restore, verify, and whatever reads a backup later): documents
 * come from a store other parties may write to, so every size, offset and
 * range is checked against the record's volume size first, once, here.
 *
 * - the record's volume size is a positive whole number of bytes;
 * - every object is non-empty, at most MAX_OBJECT_BYTES long, and lies
 *   inside its backup's volume;
 * - a full backup's objects tile its volume: every byte exactly once;
 * - an incremental's objects are disjoint (its changed runs);
 * - the chain, cut at the requested backup's size, covers every byte.
 */
import { constants } from "node:buffer"
import { Effect } from "effect"
import type { DataObject } from "../domain/documents.js"
import { InvalidBackup } from "../domain/errors.js"
import type { BackupRecord } from "../domain/record.js"
import { clip } from "../format/untrusted.js"
import { firstGap, flatten, type Placed } from "./extents.js"

/** The longest object a restore can hold in one buffer (Node's limit; Cinder's posix default is 1.9 GB). */
export const MAX_OBJECT_BYTES = constants.MAX_LENGTH

/** The record's volume size, refused unless it is a positive safe integer. */
export const volumeSizeOf = (record: BackupRecord): Effect.Effect<number, InvalidBackup> =>
  Number.isSafeInteger(record.volume_size_bytes) && record.volume_size_bytes > 0
    ? Effect.succeed(record.volume_size_bytes)
    : Effect.fail(new InvalidBackup({ backupId: record.id, reason: `the record's volume size ${record.volume_size_bytes} is not a positive number of bytes` }))

const describe = (object: DataObject) => `offset ${object.offset}, length ${object.length}`

/** Why one backup's objects cannot be its volume's (see the module comment), if they cannot. */
const layoutProblem = (objects: ReadonlyArray<DataObject>, size: number, full: boolean): { object?: DataObject; reason: string } | undefined => {
  for (const object of objects) {
    if (object.length === 0) return { object, reason: "the object is empty" }
    if (object.length > MAX_OBJECT_BYTES) return { object, reason: `the object is longer than ${MAX_OBJECT_BYTES} bytes` }
    if (object.offset + object.length > size) {
      return { object, reason: `the object (${describe(object)}) lies outside the ${size}-byte volume` }
    }
  }
  const sorted = [...objects].sort((a, b) => a.offset - b.offset)
  let covered = 0
  for (const object of sorted) {
    if (object.offset < covered) return { object, reason: `the object (${describe(object)}) overlaps another object of the backup` }
    if (full && object.offset > covered) {
      return { object, reason: `bytes ${covered}-${object.offset} of the volume are in no object of the full backup` }
    }
    covered = object.offset + object.length
  }
  if (full && covered < size) return { reason: `bytes ${covered}-${size} of the ${size}-byte volume are in no object of the full backup` }
  return undefined
}

/** Fails with InvalidBackup, naming the object, when `objects` cannot be `record`'s (see the module comment). */
export const checkLayout = (record: BackupRecord, objects: ReadonlyArray<DataObject>): Effect.Effect<void, InvalidBackup> =>
  Effect.flatMap(volumeSizeOf(record), (size) => {
    const problem = layoutProblem(objects, size, record.parent_id === null)
    if (problem === undefined) return Effect.void
    return Effect.fail(
      new InvalidBackup({
        backupId: record.id,
        reason: problem.reason,
        ...(problem.object === undefined ? {} : { object: clip(problem.object.name) })
      })
    )
  })

/**
 * The chain's objects, oldest backup first, flattened to what the requested
 * backup's `size` bytes are made of; fails when some byte is in no object
 * (a chain whose volume grew past its full backup's without the objects to
 * show for it).
 */
export const placeChain = <O extends DataObject>(
  requestedId: string,
  layers: ReadonlyArray<ReadonlyArray<O>>,
  size: number
): Effect.Effect<Array<Placed<O>>, InvalidBackup> => {
  const placed = flatten(layers, size)
  const gap = firstGap(placed, size)
  return gap === undefined
    ? Effect.succeed(placed)
    : Effect.fail(new InvalidBackup({ backupId: requestedId, reason: `bytes ${gap.start}-${gap.end} of the ${size}-byte volume are in no object of the chain` }))
}

/**
 * A visible range that does not start on a sha block boundary, or ends
 * inside a block before the volume's end: the sha256 list cannot check it
 * block by block. Never the case for backups written by Cinder or by us,
 * whose objects start and end on block boundaries (the last one at the end).
 */
export const misalignedRange = (placed: ReadonlyArray<Placed<DataObject>>, blockSize: number, size: number) =>
  placed.find(({ visible }) => visible.some((r) => r.start % blockSize !== 0 || (r.end % blockSize !== 0 && r.end !== size)))
