/**
 * The final extent map of a backup chain: for every byte of the volume, the
 * newest object that covers it. A restore fetches only objects that are
 * still visible and writes each byte once, however long the chain.
 *
 * One sweep over the objects' boundaries with a heap of the objects open at
 * each point, so the time is O(n log n) in the number of objects, whatever
 * the documents say (a quadratic merge let a hostile list of a million
 * disjoint runs take minutes).
 */

/** A half-open byte range [start, end). */
export interface Range {
  readonly start: number
  readonly end: number
}

export interface Placed<O> {
  readonly object: O
  /** the object's bytes that survive, as volume ranges */
  readonly visible: ReadonlyArray<Range>
}

interface Entry<O> {
  readonly object: O
  /** newer objects have higher ranks: later backups, and later in one list */
  readonly rank: number
  readonly start: number
  readonly end: number
  readonly visible: Array<Range>
}

/** A max-heap of entries by rank. */
class RankHeap<O> {
  private readonly items: Array<Entry<O>> = []
  get top(): Entry<O> | undefined {
    return this.items[0]
  }
  push(entry: Entry<O>): void {
    const items = this.items
    let i = items.push(entry) - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (items[parent]!.rank >= entry.rank) break
      items[i] = items[parent]!
      i = parent
    }
    items[i] = entry
  }
  pop(): void {
    const items = this.items
    const last = items.pop()!
    if (items.length === 0) return
    let i = 0
    for (;;) {
      const left = 2 * i + 1
      if (left >= items.length) break
      const right = left + 1
      const child = right < items.length && items[right]!.rank > items[left]!.rank ? right : left
      if (items[child]!.rank <= last.rank) break
      items[i] = items[child]!
      i = child
    }
    items[i] = last
  }
}

/**
 * `layers` oldest first, each a list of objects with `offset` and `length`;
 * a later object wins, across backups and within one. Only bytes before
 * `end` count (a chain restores to the requested backup's size). Returns the
 * objects with at least one visible byte, in volume order.
 */
export const flatten = <O extends { readonly offset: number; readonly length: number }>(
  layers: ReadonlyArray<ReadonlyArray<O>>,
  end = Number.POSITIVE_INFINITY
): Array<Placed<O>> => {
  const entries: Array<Entry<O>> = []
  for (const layer of layers) {
    for (const object of layer) {
      const stop = Math.min(object.offset + object.length, end)
      if (stop > object.offset) entries.push({ object, rank: entries.length, start: object.offset, end: stop, visible: [] })
    }
  }
  const byStart = [...entries].sort((a, b) => a.start - b.start)
  const points = Float64Array.from(entries.flatMap((e) => [e.start, e.end])).sort()
  const open = new RankHeap<O>()
  let next = 0
  for (let i = 0; i < points.length; i++) {
    const at = points[i]!
    if (i > 0 && at === points[i - 1]) continue
    while (next < byStart.length && byStart[next]!.start <= at) open.push(byStart[next++]!)
    // Entries that ended are dropped lazily, when they come to the top.
    while (open.top !== undefined && open.top.end <= at) open.pop()
    const owner = open.top
    if (owner === undefined) continue
    let until = at
    for (let j = i + 1; j < points.length; j++) {
      if (points[j]! > at) {
        until = points[j]!
        break
      }
    }
    const last = owner.visible[owner.visible.length - 1]
    if (last !== undefined && last.end === at) owner.visible[owner.visible.length - 1] = { start: last.start, end: until }
    else owner.visible.push({ start: at, end: until })
  }
  return byStart.filter((e) => e.visible.length > 0).map(({ object, visible }) => ({ object, visible }))
}

/** The first range of [0, size) that no visible range covers, if any; `placed` in volume order. */
export const firstGap = (placed: ReadonlyArray<Placed<unknown>>, size: number): Range | undefined => {
  const ranges = placed.flatMap((p) => p.visible).sort((a, b) => a.start - b.start)
  let covered = 0
  for (const range of ranges) {
    if (range.start > covered) return { start: covered, end: range.start }
    covered = Math.max(covered, range.end)
  }
  return covered < size ? { start: covered, end: size } : undefined
}
