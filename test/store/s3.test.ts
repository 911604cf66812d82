/**
 * The S3 layer against a real S3 API: Swift's s3api middleware on the
 * loopback Swift (scripts/swift-loopback.sh). The ObjectStore conformance
 * suite with path-style addressing, virtual-hosted addressing through
 * s3api's storage_domain, SSE-C headers on the wire, and auth failures.
 * Skipped only when the SWIFT_LOOPBACK_* variables are absent.
 */
import { HttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import * as Undici from "@effect/platform-node/Undici"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import type { LookupFunction } from "node:net"
import { layerS3, ObjectStore } from "../../src/index.js"
import { loopback, s3Options, s3Store, SKIP_REASON, swiftStore, uniqueContainer } from "../support/swift.js"
import { objectStoreConformance } from "../../src/testing/index.js"

const bytes = (text: string) => new TextEncoder().encode(text)
const text = (b: Uint8Array) => new TextDecoder().decode(b)

if (loopback === undefined) {
  describe.skip(`S3 layer (${SKIP_REASON})`, () => {
    it("needs Swift's S3 API", () => {})
  })
} else {
  const sw = loopback

  objectStoreConformance("s3 (path-style, SigV4 signed payloads)", s3Store(sw), {
    slashInObjectNames: true,
    nestedContainers: false,
    refusingLayer: s3Store(sw, { createContainers: false })
  })

  describe("S3 specifics", () => {
    it.effect("UNSIGNED-PAYLOAD uploads (Content-MD5 still checked)", () =>
      Effect.gen(function* () {
        const store = yield* ObjectStore
        const bucket = uniqueContainer("unsigned")
        yield* store.ensureContainer(bucket)
        yield* store.put(bucket, "o", bytes("unsigned payload"))
        expect(text(yield* store.get(bucket, "o"))).toBe("unsigned payload")
      }).pipe(Effect.provide(s3Store(sw, { unsignedPayload: true })))
    )

    // `<bucket>.s3.localhost` resolves to the loopback proxy through this
    // client's own DNS lookup; s3api finds the bucket in the Host header.
    it.effect.skipIf(sw.s3Domain === undefined)("virtual-hosted addressing (<bucket>.<domain>)", () => {
      const lookup: LookupFunction = (_host, options, callback) =>
        options.all ? callback(null, [{ address: "127.0.0.1", family: 4 }]) : callback(null, "127.0.0.1", 4)
      const client = Layer.unwrapScoped(
        Effect.map(
          Effect.acquireRelease(
            Effect.sync(() => new Undici.Agent({ connect: { lookup } })),
            (agent) => Effect.promise(() => agent.destroy())
          ),
          (agent) => Layer.succeed(HttpClient.HttpClient, NodeHttpClient.makeUndici(agent))
        )
      )
      const port = new URL(sw.s3Endpoint).port
      const virtual = layerS3(s3Options(sw, { endpoint: `http://${sw.s3Domain}:${port}`, pathStyle: false })).pipe(Layer.provide(client))
      return Effect.gen(function* () {
        const store = yield* ObjectStore
        const bucket = uniqueContainer("vhost")
        yield* store.ensureContainer(bucket)
        yield* store.put(bucket, "volume_v/20260101000000/az_nova_backup_b-00001", bytes("virtual host"))
        expect(yield* store.list(bucket, "volume_v/")).toEqual(["volume_v/20260101000000/az_nova_backup_b-00001"])
        expect(text(yield* store.get(bucket, "volume_v/20260101000000/az_nova_backup_b-00001"))).toBe("virtual host")
        // The same bucket is the Swift container of the same account.
        const swift = yield* Effect.provide(
          Effect.flatMap(ObjectStore, (s) => s.list(bucket, "")),
          swiftStore(sw)
        )
        expect(swift).toEqual(["volume_v/20260101000000/az_nova_backup_b-00001"])
      }).pipe(Effect.provide(virtual))
    })

    it.effect("SSE-C: the customer key travels with writes and reads (s3api accepts and ignores it)", () =>
      Effect.gen(function* () {
        const store = yield* ObjectStore
        const bucket = uniqueContainer("ssec")
        yield* store.ensureContainer(bucket)
        yield* store.put(bucket, "o", bytes("customer key"))
        expect(text(yield* store.get(bucket, "o"))).toBe("customer key")
      }).pipe(Effect.provide(s3Store(sw, { sseCustomerKey: Redacted.make("0123456789abcdef0123456789abcdef") })))
    )

    it.effect("a wrong secret is a StoreAuthError (SignatureDoesNotMatch) without the secret", () =>
      Effect.gen(function* () {
        const store = yield* ObjectStore
        const error = yield* Effect.flip(store.list(uniqueContainer(), ""))
        expect(error._tag).toBe("StoreAuthError")
        expect(error.message).toContain("403")
        expect(JSON.stringify(error) + error.message).not.toContain("secret-xyz")
      }).pipe(Effect.provide(s3Store(sw, { secretAccessKey: Redacted.make("secret-xyz") })))
    )

    it.effect("objects written through S3 read back through Swift, and the other way", () =>
      Effect.gen(function* () {
        const bucket = uniqueContainer("both")
        const viaS3 = <A, E>(f: (store: ObjectStore) => Effect.Effect<A, E>) =>
          Effect.provide(Effect.flatMap(ObjectStore, f), s3Store(sw))
        const viaSwift = <A, E>(f: (store: ObjectStore) => Effect.Effect<A, E>) =>
          Effect.provide(Effect.flatMap(ObjectStore, f), swiftStore(sw))
        yield* viaS3((s) => Effect.zipRight(s.ensureContainer(bucket), s.put(bucket, "from-s3", bytes("s3"))))
        yield* viaSwift((s) => s.put(bucket, "from-swift", bytes("swift")))
        expect(text(yield* viaSwift((s) => s.get(bucket, "from-s3")))).toBe("s3")
        expect(text(yield* viaS3((s) => s.get(bucket, "from-swift")))).toBe("swift")
        expect(yield* viaS3((s) => s.list(bucket, "from-"))).toEqual(["from-s3", "from-swift"])
      })
    )
  })
}
