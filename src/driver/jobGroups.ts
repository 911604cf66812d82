/**
 * Worker jobs of a slot each: how the objects (or chunks) of an operation
 * are packed into codec jobs, and, for a restore to an ordered target (a
 * pipe, a Stream, which takes the volume front to back), the segments that
 * must travel together. An object's visible ranges can straddle newer
 * objects (an incremental's changed blocks inside a full backup's chunk),
 * so objects are first joined into segments: runs of the volume that no
 * object outside them reaches into. An ordered job is one or more whole
 * segments, so its ranges, in order, continue exactly where the previous
 * job's ended: jobs run side by side and are written in turn, each slot
 * held until its job is written (the reorder buffer is the slots).
 */
import type { Range } from "./extents.js"

/** Small objects share a worker job: at most GROUP_OBJECTS of them, in a slot of at least GROUP_BYTES. */
export const GROUP_OBJECTS = 64
export const GROUP_BYTES = 8 * 1024 * 1024

/** The slot size a set of objects needs. */
export const largestObject = (objects: ReadonlyArray<{ readonly length: number }>) =>
  objects.reduce((max, o) => Math.max(max, o.length), 0)

/**
 * Placements in jobs of one slot each, in their order: an object of more
 * than half a slot alone, the smaller ones packed together, at most `most`
 * to a job (a job never reaches back past a lone one, so the jobs, one
 * after the other, keep the placements' order). A chain's many small incremental objects then cost a worker job
 * per slotful rather than per object (or per gap between two objects of the
 * full backup), and their md5s are taken side by side.
 */
export const groupPlacements = <P extends { readonly object: { readonly length: number } }>(
  placed: ReadonlyArray<P>,
  slotSize: number,
  most: number
): Array<Array<P>> => {
  const groups: Array<Array<P>> = []
  let open: Array<P> | undefined
  let bytes = 0
  for (const placement of placed) {
    const length = placement.object.length
    if (length * 2 > slotSize) {
      groups.push([placement])
      open = undefined
    } else if (open !== undefined && open.length < most && bytes + length <= slotSize) {
      open.push(placement)
      bytes += length
    } else {
      groups.push((open = [placement]))
      bytes = length
    }
  }
  return groups
}

/**
 * `placed` joined into segments, in volume order: each placement belongs to
 * exactly one, and the ranges of a segment's placements, sorted, are one
 * contiguous run that no other segment's ranges interleave.
 */
export const segments = <P extends { readonly visible: ReadonlyArray<Range> }>(placed: ReadonlyArray<P>): Array<Array<P>> => {
  const ranges = placed.flatMap((p, i) => p.visible.map((range) => ({ start: range.start, owner: i })))
  ranges.sort((a, b) => a.start - b.start)
  const lastRange = new Array<number>(placed.length).fill(-1)
  ranges.forEach((range, k) => (lastRange[range.owner] = k))
  const joined: Array<Array<P>> = []
  let current: Array<P> = []
  let reach = -1
  const seen = new Uint8Array(placed.length)
  for (const [k, { owner }] of ranges.entries()) {
    if (seen[owner] === 0) {
      seen[owner] = 1
      current.push(placed[owner]!)
      reach = Math.max(reach, lastRange[owner]!)
    }
    if (k === reach) {
      joined.push(current)
      current = []
    }
  }
  return joined
}

/** The bytes of a job's objects. */
export const objectBytes = (placements: ReadonlyArray<{ readonly object: { readonly length: number } }>) =>
  placements.reduce((sum, p) => sum + p.object.length, 0)

/** The slot a segment needs: all its objects at once. */
export const largestSegment = (joined: ReadonlyArray<ReadonlyArray<{ readonly object: { readonly length: number } }>>) =>
  joined.reduce((max, segment) => Math.max(max, objectBytes(segment)), 0)

/**
 * Jobs in volume order, each of whole consecutive segments: a segment of
 * more than half a slot alone, smaller ones packed together up to `most`
 * segments and a slot's bytes (the slot is made to fit the largest).
 */
export const orderedGroups = <P extends { readonly object: { readonly length: number } }>(
  joined: ReadonlyArray<ReadonlyArray<P>>,
  slotSize: number,
  most: number
): Array<Array<P>> =>
  groupPlacements(
    joined.map((members) => ({ object: { length: objectBytes(members) }, members })),
    slotSize,
    most
  ).map((group) => group.flatMap((unit) => unit.members))

/**
 * How many slots of `slotSize` an ordered restore may hold: one per job in
 * flight and one being written, fewer when its segments need bigger slots
 * than an unordered restore's, so memory stays within `budget`, the
 * unordered restore's own. Never fewer than one (jobs then run one by one).
 */
export const orderedSlotCount = (concurrency: number, slotSize: number, budget: number) =>
  Math.max(1, Math.min(concurrency + 1, Math.floor(budget / slotSize)))
