/**
 * Listing by prefix past one page: more than 10000 objects (Swift's listing
 * limit; S3 pages hold 1000 keys) in one container, listed through the
 * Swift API (marker) and the S3 API (continuation token) of the loopback
 * Swift. The objects are tiny and written once, concurrently, through the
 * Swift layer; the S3 bucket is the same container of the same account.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { ObjectStore } from "../../src/index.js"
import { loopback, s3Store, SKIP_REASON, swiftStore, uniqueContainer } from "../support/swift.js"

const COUNT = 10_050
const PREFIX = "volume_v/20260101000000/az_nova_backup_b-"
const name = (i: number) => `${PREFIX}${String(i).padStart(5, "0")}`

describe.skipIf(loopback === undefined)(`listing more than 10000 objects${loopback === undefined ? ` (${SKIP_REASON})` : ""}`, () => {
  const container = uniqueContainer("page")
  const listWith = (layer: ReturnType<typeof swiftStore>) =>
    Effect.flatMap(ObjectStore, (store) => store.list(container, PREFIX)).pipe(Effect.provide(layer))

  it.live(
    `${COUNT} objects: all listed, in order, through Swift (marker) and S3 (continuation token)`,
    () =>
      Effect.gen(function* () {
        // A skipped describe still runs its body when collecting: no dereference of a missing Swift here.
  const sw = loopback ?? ({} as NonNullable<typeof loopback>)
        yield* Effect.gen(function* () {
          const store = yield* ObjectStore
          yield* store.ensureContainer(container)
          yield* Effect.forEach(
            Array.from({ length: COUNT }, (_, i) => i + 1),
            (i) => store.put(container, name(i), new Uint8Array([i & 0xff])),
            { concurrency: 24, discard: true }
          )
          // Outside the prefix: not listed.
          yield* store.put(container, "other", new Uint8Array(1))
        }).pipe(Effect.provide(swiftStore(sw)))

        const expected = Array.from({ length: COUNT }, (_, i) => name(i + 1))
        expect(yield* listWith(swiftStore(sw))).toEqual(expected)
        expect(yield* listWith(s3Store(sw))).toEqual(expected)
        // A narrower prefix that ends inside the first page.
        const narrow = yield* Effect.flatMap(ObjectStore, (store) => store.list(container, `${PREFIX}0999`)).pipe(
          Effect.provide(s3Store(sw))
        )
        expect(narrow).toEqual(expected.filter((n) => n.startsWith(`${PREFIX}0999`)))
      }),
    120_000
  )
})
