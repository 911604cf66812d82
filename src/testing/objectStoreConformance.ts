/**
 * The ObjectStore conformance suite: every layer must pass it. Call it with
 * a name and a Layer that provides a store for each test. Each test uses
 * container names of its own (valid S3 bucket names), so a layer over a
 * shared server (Swift, S3) needs no emptying between tests.
 */
import { beforeEach, describe, expect, it } from "@effect/vitest"
import { randomBytes } from "node:crypto"
import { Effect, Exit, Fiber, Layer } from "effect"
import { newBackupRecord, ObjectStore } from "../index.js"

const bytes = (text: string) => new TextEncoder().encode(text)

/** What the store under test supports, so the suite checks the rest. */
export interface ConformanceOptions {
  /** a layer like the one under test that refuses to create containers */
  readonly refusingLayer?: Layer.Layer<ObjectStore, unknown>
  /** names with '/' are legal object names on this backend */
  readonly slashInObjectNames: boolean
  /** container names may be nested paths like Cinder's posix `ab/cd/id` (default true); else they are refused */
  readonly nestedContainers?: boolean
}

/**
 * Registers the ObjectStore conformance suite (@effect/vitest tests) for
 * `layer`: call it at a test file's top level. Every backend layer must pass it.
 */
export const objectStoreConformance = (
  name: string,
  layer: Layer.Layer<ObjectStore, unknown>,
  options: ConformanceOptions
) =>
  describe(`ObjectStore conformance: ${name}`, () => {
    const run = <A, E>(program: Effect.Effect<A, E, ObjectStore>) => program.pipe(Effect.provide(layer))
    // Fresh names per test: `container` and `other` for objects, `missing` never created.
    let container = ""
    let other = ""
    let missing = ""
    beforeEach(() => {
      const id = randomBytes(5).toString("hex")
      container = `cb-${id}-a`
      other = `cb-${id}-b`
      missing = `cb-${id}-missing`
    })

    it.effect("put then get returns the same bytes", () =>
      run(
        Effect.gen(function* () {
          const store = yield* ObjectStore
          yield* store.ensureContainer(container)
          const body = new Uint8Array(70_000).map((_, i) => (i * 31) % 256)
          yield* store.put(container, "obj-1", body)
          expect(Buffer.from(yield* store.get(container, "obj-1")).equals(body)).toBe(true)
          yield* store.put(container, "empty", new Uint8Array(0))
          expect((yield* store.get(container, "empty")).length).toBe(0)
        })
      )
    )

    it.effect("listSizes, where the store has it, lists what list lists with each object's size", () =>
      run(
        Effect.gen(function* () {
          const store = yield* ObjectStore
          if (store.listSizes === undefined) return
          yield* store.ensureContainer(container)
          yield* store.put(container, "sized-b", new Uint8Array(1234).fill(7))
          yield* store.put(container, "sized-a", new Uint8Array(0))
          yield* store.put(container, "unsized", bytes("x"))
          expect(yield* store.listSizes(container, "sized-")).toEqual([
            { name: "sized-a", bytes: 0 },
            { name: "sized-b", bytes: 1234 }
          ])
          expect((yield* store.listSizes(container, "")).map((o) => o.name)).toEqual(yield* store.list(container, ""))
        })
      )
    )

    it.effect("put replaces an existing object", () =>
      run(
        Effect.gen(function* () {
          const store = yield* ObjectStore
          yield* store.ensureContainer(container)
          yield* store.put(container, "o", bytes("first"))
          yield* store.put(container, "o", bytes("second"))
          expect(new TextDecoder().decode(yield* store.get(container, "o"))).toBe("second")
        })
      )
    )

    it.effect("stored objects do not alias the caller's buffer", () =>
      run(
        Effect.gen(function* () {
          const store = yield* ObjectStore
          yield* store.ensureContainer(container)
          const body = bytes("abc")
          yield* store.put(container, "o", body)
          body[0] = 0x7a
          expect(new TextDecoder().decode(yield* store.get(container, "o"))).toBe("abc")
        })
      )
    )

    it.effect("ensureContainer is idempotent and keeps objects", () =>
      run(
        Effect.gen(function* () {
          const store = yield* ObjectStore
          yield* store.ensureContainer(container)
          yield* store.put(container, "o", bytes("x"))
          yield* store.ensureContainer(container)
          expect(yield* store.list(container, "")).toEqual(["o"])
        })
      )
    )

    it.effect("list filters by prefix, sorted, and only in its container", () =>
      run(
        Effect.gen(function* () {
          const store = yield* ObjectStore
          yield* store.ensureContainer(container)
          yield* store.ensureContainer(other)
          for (const n of ["pre-00002", "pre-00001", "pre_metadata", "other", "pr"]) {
            yield* store.put(container, n, bytes(n))
          }
          yield* store.put(other, "pre-00003", bytes("elsewhere"))
          expect(yield* store.list(container, "pre")).toEqual(["pre-00001", "pre-00002", "pre_metadata"])
          expect(yield* store.list(container, "nothing")).toEqual([])
          expect((yield* store.list(container, "")).length).toBe(5)
        })
      )
    )

    it.effect("get of a missing object fails with ObjectNotFound naming it", () =>
      run(
        Effect.gen(function* () {
          const store = yield* ObjectStore
          yield* store.ensureContainer(container)
          const error = yield* Effect.flip(store.get(container, "missing"))
          expect(error._tag).toBe("ObjectNotFound")
          expect(error.message).toContain("missing")
        })
      )
    )

    it.effect("a missing container is ContainerNotFound for list and get", () =>
      run(
        Effect.gen(function* () {
          const store = yield* ObjectStore
          expect((yield* Effect.flip(store.list(missing, "")))._tag).toBe("ContainerNotFound")
          expect((yield* Effect.flip(store.get(missing, "o")))._tag).toBe("ContainerNotFound")
        })
      )
    )

    it.effect("delete removes; deleting a missing object succeeds", () =>
      run(
        Effect.gen(function* () {
          const store = yield* ObjectStore
          yield* store.ensureContainer(container)
          yield* store.put(container, "o", bytes("x"))
          yield* store.delete(container, "o")
          expect(yield* store.list(container, "")).toEqual([])
          yield* store.delete(container, "o")
          yield* store.delete(container, "never-existed")
        })
      )
    )

    it.effect("names that could escape or are malformed are refused with InvalidObjectName", () =>
      run(
        Effect.gen(function* () {
          const store = yield* ObjectStore
          yield* store.ensureContainer(container)
          const bad = ["", "..", "../x", "a/../../b", "/abs", "a\0b", "x".repeat(1100), "a\\b", "./a"]
          for (const name of bad) {
            expect((yield* Effect.flip(store.put(container, name, bytes("x"))))._tag).toBe("InvalidObjectName")
            expect((yield* Effect.flip(store.get(container, name)))._tag).toBe("InvalidObjectName")
            expect((yield* Effect.flip(store.delete(container, name)))._tag).toBe("InvalidObjectName")
            expect((yield* Effect.flip(store.ensureContainer(name)))._tag).toBe("InvalidObjectName")
          }
        })
      )
    )

    if (options.nestedContainers ?? true) {
      it.effect("nested container paths work (Cinder's posix default is ab/cd/id)", () =>
        run(
          Effect.gen(function* () {
            const store = yield* ObjectStore
            const nested = `ab/cd/${container}`
            yield* store.ensureContainer(nested)
            yield* store.put(nested, "o", bytes("deep"))
            expect(yield* store.list(nested, "")).toEqual(["o"])
          })
        )
      )
    } else {
      it.effect("nested container paths are refused with InvalidObjectName", () =>
        run(
          Effect.gen(function* () {
            const store = yield* ObjectStore
            expect((yield* Effect.flip(store.ensureContainer(`ab/cd/${container}`)))._tag).toBe("InvalidObjectName")
            expect((yield* Effect.flip(store.list(`ab/cd/${container}`, "")))._tag).toBe("InvalidObjectName")
          })
        )
      )
    }

    if (options.slashInObjectNames) {
      it.effect("object names with '/' (Swift-style prefixes) round-trip and list by prefix", () =>
        run(
          Effect.gen(function* () {
            const store = yield* ObjectStore
            yield* store.ensureContainer(container)
            yield* store.put(container, "volume_v/20260101000000/az_nova_backup_b-00001", bytes("1"))
            yield* store.put(container, "volume_v/20260101000000/az_nova_backup_b_metadata", bytes("m"))
            expect(yield* store.list(container, "volume_v/20260101000000/az_nova_backup_b")).toHaveLength(2)
          })
        )
      )
    }

    it.live("an interrupted write leaves no object behind", () =>
      run(
        Effect.gen(function* () {
          const store = yield* ObjectStore
          yield* store.ensureContainer(container)
          const big = new Uint8Array(64 * 1024 * 1024)
          for (let attempt = 0; attempt < 5; attempt++) {
            const fiber = yield* Effect.fork(store.put(container, `big-${attempt}`, big))
            yield* Effect.sleep(attempt)
            const exit = yield* Fiber.interrupt(fiber)
            const listed = yield* store.list(container, `big-${attempt}`)
            // Either the write finished before the interruption, or nothing is there.
            expect(Exit.isSuccess(exit) ? listed.length : 0).toBe(listed.length)
          }
        })
      )
    )

    it.effect("prefix and container follow the backend's Cinder conventions", () =>
      run(
        Effect.gen(function* () {
          const store = yield* ObjectStore
          const record = newBackupRecord({ id: "0123abcd-0000", volume_id: "vol", volume_size_bytes: 1 })
          const prefix = store.objectPrefix(record, new Date("2026-11-26T04:04:46Z"))
          expect(prefix).toContain("vol")
          expect(prefix).toContain("20261126040446")
          expect(prefix.endsWith("backup_0123abcd-0000")).toBe(true)
          expect(store.containerFor({ ...record, container: "mine" })).toBe("mine")
          expect(store.defaults.chunkSize % store.defaults.shaBlockSize).toBe(0)
        })
      )
    )

    if (options.refusingLayer !== undefined) {
      const refusing = options.refusingLayer
      it.effect("a store told not to create containers refuses with ContainerNotFound", () =>
        Effect.gen(function* () {
          const store = yield* ObjectStore
          expect((yield* Effect.flip(store.ensureContainer(missing)))._tag).toBe("ContainerNotFound")
          expect((yield* Effect.flip(store.list(missing, "")))._tag).toBe("ContainerNotFound")
        }).pipe(Effect.provide(refusing))
      )
    }
  })
