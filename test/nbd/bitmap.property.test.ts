/**
 * Changed-block incrementals through a real qemu-nbd: over random writes
 * (made with qemu-io, so qemu's dirty bitmap records them) between a full
 * backup and an incremental, the incremental that reads only what the
 * bitmap marks has the objects and documents of the one that reads every
 * byte, and both restore to what `qemu-img convert -O raw` gives.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fc from "effect/FastCheck"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { backup, nbdSource, ObjectStore, restore } from "../../src/index.js"
import { memoryServices, withTempDir } from "../support/layers.js"
import { haveNbdServers, qemuNbd, qemuWrite, tool } from "../support/nbdServers.js"

const BLOCK = 4096
/** qemu's default dirty-bitmap granularity for a qcow2 of 64 KiB clusters. */
const GRANULE = 65536
const options = { chunkSize: 16 * BLOCK, shaBlockSize: BLOCK, compression: "zlib", now: new Date("2026-12-02T10:00:00Z") }
const createdAt = new Date("2026-12-02T09:00:00Z")

const contents = Effect.gen(function* () {
  const store = yield* ObjectStore
  const all = new Map<string, string>()
  for (const name of yield* store.list("volumebackups", "")) all.set(name, Buffer.from(yield* store.get("volumebackups", name)).toString("base64"))
  return all
})

const write = fc.record({ at: fc.nat({ max: 4 * 1024 * 1024 - 1 }), length: fc.integer({ min: 1, max: 40_000 }), pattern: fc.option(fc.integer({ min: 1, max: 255 }), { nil: undefined }) })

describe.skipIf(!haveNbdServers)("dirty-bitmap incrementals through qemu-nbd", () => {
  it.live.prop(
    "bitmap incremental documents equal full-read incremental documents, over random writes",
    [fc.array(write, { minLength: 1, maxLength: 4 }), fc.array(write, { maxLength: 6 })],
    ([before, between]) =>
      withTempDir((dir) =>
        Effect.gen(function* () {
          const size = 4 * 1024 * 1024
          const image = join(dir, "vm.qcow2")
          tool("qemu-img", ["create", "-q", "-f", "qcow2", image, String(size)])
          qemuWrite(image, before.map((w) => ({ ...w, length: Math.min(w.length, size - w.at) })))
          tool("qemu-img", ["bitmap", "--add", image, "b0"])
          const socket = join(dir, "nbd.sock")
          // Two stores, each with the same full backup, at which the bitmap starts.
          const stores = [yield* Layer.build(memoryServices()), yield* Layer.build(memoryServices())] as const
          for (const services of stores) {
            yield* Effect.scoped(
              Effect.gen(function* () {
                const server = yield* qemuNbd(image, socket)
                yield* backup({ id: "f", volume_id: "v", created_at: createdAt }, yield* nbdSource(server.uri), options)
              })
            ).pipe(Effect.provide(services))
          }
          qemuWrite(image, between.map((w) => ({ ...w, length: Math.min(w.length, size - w.at) })))
          const incremental = (bitmap: boolean) =>
            Effect.scoped(
              Effect.gen(function* () {
                const server = yield* qemuNbd(image, socket, { bitmap: "b0" })
                const source = yield* nbdSource(server.uri, bitmap ? { dirtyBitmap: "b0" } : {})
                let read = 0
                const counted = { ...source, read: (offset: number, buffer: Uint8Array) => Effect.tap(source.read(offset, buffer), (n) => Effect.sync(() => (read += n))) }
                yield* backup({ id: "i", volume_id: "v", parent_id: "f", created_at: createdAt }, counted, options)
                const out = join(dir, `restored-${bitmap}.img`)
                yield* restore("i", out)
                return { objects: yield* contents, restored: readFileSync(out), read }
              })
            )
          const withBitmap = yield* incremental(true).pipe(Effect.provide(stores[0]))
          const everyByte = yield* incremental(false).pipe(Effect.provide(stores[1]))
          expect(withBitmap.objects).toEqual(everyByte.objects)
          // Only what the bitmap marks (in its 64 KiB granules) is read.
          expect(withBitmap.read).toBeLessThanOrEqual(between.reduce((sum, w) => sum + w.length + 2 * GRANULE, 0))
          tool("qemu-img", ["convert", "-f", "qcow2", "-O", "raw", image, join(dir, "raw.img")])
          expect(withBitmap.restored.equals(readFileSync(join(dir, "raw.img")))).toBe(true)
        })
      ).pipe(Effect.scoped),
    { fastCheck: { numRuns: 8 }, timeout: 120_000 }
  )
})
