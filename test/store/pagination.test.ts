/**
 * Listing by prefix past one page, in one container of the loopback Swift:
 * through the Swift API (marker; pages of `listingPageSize` names, a short
 * page being the last) and the S3 API (continuation token; pages of 1000
 * keys). A page size above the cluster's container_listing_limit (10000)
 * is refused with 412, and the store then pages by the cluster's own limit.
 * The objects are tiny and written once, concurrently, through the Swift
 * layer; the S3 bucket is the same container of the same account.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { ObjectStore } from "../../src/index.js"
import { loopback, s3Store, SKIP_REASON, swiftStore, uniqueContainer } from "../support/swift.js"

const COUNT = 2_050
const PREFIX = "volume_v/20260101000000/az_nova_backup_b-"
const name = (i: number) => `${PREFIX}${String(i).padStart(5, "0")}`

describe.skipIf(loopback === undefined)(`listing past one page${loopback === undefined ? ` (${SKIP_REASON})` : ""}`, () => {
  const container = uniqueContainer("page")
  const listWith = (layer: ReturnType<typeof swiftStore>, prefix = PREFIX) =>
    Effect.flatMap(ObjectStore, (store) => store.list(container, prefix)).pipe(Effect.provide(layer))

  it.live(
    `${COUNT} objects: all listed, in order, through Swift (marker, any page size) and S3 (continuation token)`,
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
        // The default (1000: two full pages and a short one), small pages, pages that end exactly at the
        // last name (then an empty page ends it), and one the cluster refuses (412: its own limit pages).
        for (const listingPageSize of [undefined, 97, 1025, 20_000]) {
          const listed = yield* listWith(swiftStore(sw, listingPageSize === undefined ? {} : { listingPageSize }))
          expect(listed.length, `page size ${listingPageSize ?? "default"}`).toBe(COUNT)
          expect(listed).toEqual(expected)
        }
        expect(yield* listWith(s3Store(sw))).toEqual(expected)
        // A narrower prefix that ends inside the first page.
        const narrow = `${PREFIX}0999`
        expect(yield* listWith(s3Store(sw), narrow)).toEqual(expected.filter((n) => n.startsWith(narrow)))
        expect(yield* listWith(swiftStore(sw, { listingPageSize: 5 }), narrow)).toEqual(expected.filter((n) => n.startsWith(narrow)))
      }),
    120_000
  )
})
