import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { flatten } from "../../src/driver/extents.js"
import { groupPlacements, orderedGroups, segments } from "../../src/driver/jobGroups.js"

interface Obj {
  readonly id: number
  readonly offset: number
  readonly length: number
}

const layersArb = fc.array(
  fc.array(fc.record({ offset: fc.nat({ max: 200 }), length: fc.integer({ min: 1, max: 60 }) }), { maxLength: 6 }),
  { minLength: 1, maxLength: 6 }
)

describe("flatten", () => {
  it.prop("matches painting every object in order, newest last, and writes each byte once", [layersArb], ([raw]) => {
    let id = 0
    const layers: Array<Array<Obj>> = raw.map((layer) => layer.map((o) => ({ ...o, id: id++ })))
    const painted = new Array<number>(300).fill(-1)
    for (const layer of layers) for (const o of layer) painted.fill(o.id, o.offset, o.offset + o.length)
    const flat = new Array<number>(300).fill(-1)
    for (const { object, visible } of flatten(layers)) {
      for (const r of visible) {
        expect(r.start).toBeGreaterThanOrEqual(object.offset)
        expect(r.end).toBeLessThanOrEqual(object.offset + object.length)
        for (let i = r.start; i < r.end; i++) {
          expect(flat[i]).toBe(-1)
          flat[i] = object.id
        }
      }
    }
    expect(flat).toEqual(painted)
  }, { fastCheck: { numRuns: 300 } })

  it("skips objects that later backups hide completely", () => {
    const full = [{ offset: 0, length: 100 }, { offset: 100, length: 100 }]
    const incr = [{ offset: 90, length: 120 }]
    const placed = flatten([full, incr])
    expect(placed.map((p) => p.visible)).toEqual([[{ start: 0, end: 90 }], [{ start: 90, end: 210 }]])
  })
})

describe("groupPlacements", () => {
  it.prop(
    "keeps every placement once and in order, each group within the slot and the count limit",
    [fc.array(fc.integer({ min: 1, max: 100 }), { maxLength: 60 }), fc.integer({ min: 1, max: 8 })],
    ([lengths, most]) => {
      const placed = lengths.map((length, id) => ({ id, object: { length } }))
      const groups = groupPlacements(placed, 100, most)
      // One after the other, the groups keep the placements' order (an ordered restore relies on it).
      expect(groups.flat()).toEqual(placed)
      for (const group of groups) {
        expect(group.length).toBeGreaterThan(0)
        expect(group.map((p) => p.id)).toEqual([...group.map((p) => p.id)].sort((a, b) => a - b))
        // Objects of more than half a slot go alone.
        if (group.length > 1) for (const p of group) expect(p.object.length).toBeLessThanOrEqual(50)
        expect(group.length).toBeLessThanOrEqual(most)
        // A group of more than one fits the slot; a lone object is as big as the slot allows anyway.
        if (group.length > 1) expect(group.reduce((n, p) => n + p.object.length, 0)).toBeLessThanOrEqual(100)
      }
    }
  )
})

describe("ordered jobs (segments)", () => {
  it.prop(
    "written job by job, each job's ranges in order, the volume comes out in order; every placement is in one job",
    [layersArb, fc.integer({ min: 20, max: 200 }), fc.integer({ min: 1, max: 4 })],
    ([raw, slotSize, most]) => {
      let id = 0
      const layers = raw.map((layer) => layer.map((o) => ({ ...o, id: id++ })))
      const placed = flatten(layers)
      const jobs = orderedGroups(segments(placed), slotSize, most)
      expect(jobs.flat().map((p) => p.object.id).sort((a, b) => a - b)).toEqual(placed.map((p) => p.object.id).sort((a, b) => a - b))
      // Written job by job, each job's ranges sorted, the volume comes out in order.
      const inVolumeOrder = placed.flatMap((p) => p.visible).sort((a, b) => a.start - b.start)
      const jobByJob = jobs.flatMap((job) => job.flatMap((p) => p.visible).sort((a, b) => a.start - b.start))
      expect(jobByJob).toEqual(inVolumeOrder)
    },
    { fastCheck: { numRuns: 500 } }
  )

  it("joins an object with the newer ones inside it, and keeps neighbours apart", () => {
    const full = [{ id: 0, offset: 0, length: 100 }, { id: 1, offset: 100, length: 100 }]
    const incr = [{ id: 2, offset: 40, length: 10 }]
    const joined = segments(flatten([full, incr]))
    expect(joined.map((segment) => segment.map((p) => p.object.id))).toEqual([[0, 2], [1]])
  })
})
