/**
 * The final extent map of a backup chain: for every byte of the volume, the
 * newest object that covers it. A restore fetches only objects that are
 * still visible and writes each byte once, however long the chain.
 */

/** A half-open byte range [start, end). */
export interface Range {
  readonly start: number
  readonly end: number
}

/** Sorted, disjoint, merged ranges. */
class Coverage {
  private readonly ranges: Array<Range> = []

  /** The parts of `range` not covered yet, in order. */
  uncovered(range: Range): Array<Range> {
    const parts: Array<Range> = []
    let cursor = range.start
    for (const r of this.ranges.slice(this.firstEndingAfter(range.start))) {
      if (r.start >= range.end) break
      if (r.start > cursor) parts.push({ start: cursor, end: r.start })
      cursor = Math.max(cursor, r.end)
      if (cursor >= range.end) break
    }
    if (cursor < range.end) parts.push({ start: cursor, end: range.end })
    return parts
  }

  add(range: Range): void {
    const i = this.firstEndingAfter(range.start - 1)
    let start = range.start
    let end = range.end
    let j = i
    // Absorb every range that touches or overlaps.
    while (j < this.ranges.length && this.ranges[j]!.start <= end) {
      start = Math.min(start, this.ranges[j]!.start)
      end = Math.max(end, this.ranges[j]!.end)
      j++
    }
    this.ranges.splice(i, j - i, { start, end })
  }

  /** Index of the first range whose end is after `offset` (binary search). */
  private firstEndingAfter(offset: number): number {
    let lo = 0
    let hi = this.ranges.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.ranges[mid]!.end <= offset) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}

export interface Placed<O> {
  readonly object: O
  /** the object's bytes that survive, as volume ranges */
  readonly visible: ReadonlyArray<Range>
}

/**
 * `layers` oldest first, each a list of objects with `offset` and `length`.
 * Returns the objects with at least one visible byte, in volume order.
 */
export const flatten = <O extends { readonly offset: number; readonly length: number }>(
  layers: ReadonlyArray<ReadonlyArray<O>>
): Array<Placed<O>> => {
  const coverage = new Coverage()
  const placed: Array<Placed<O>> = []
  // Newest first: a later write wins, across backups and within one.
  for (const layer of [...layers].reverse()) {
    for (const object of [...layer].reverse()) {
      const range = { start: object.offset, end: object.offset + object.length }
      const visible = coverage.uncovered(range)
      if (visible.length > 0) placed.push({ object, visible })
      coverage.add(range)
    }
  }
  return placed.sort((a, b) => a.object.offset - b.object.offset)
}
