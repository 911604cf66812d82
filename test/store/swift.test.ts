/**
 * The Swift layer against a real OpenStack Swift (scripts/swift-loopback.sh):
 * the ObjectStore conformance suite, the three ways to authenticate (auth
 * v1/tempauth, a real Keystone v3 when the script started one, a
 * pre-obtained token), renewal of an expired token, and auth failures.
 * Skipped only when the SWIFT_LOOPBACK_* variables are absent.
 */
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { layerSwift, ObjectStore, type SwiftAuth } from "../../src/index.js"
import { expireTempauthToken, loopback, SKIP_REASON, swiftStore, tempauthToken, uniqueContainer } from "../support/swift.js"
import { objectStoreConformance } from "../../src/testing/index.js"

const bytes = (text: string) => new TextEncoder().encode(text)
const text = (b: Uint8Array) => new TextDecoder().decode(b)

const withAuth = (auth: SwiftAuth) => layerSwift({ auth }).pipe(Layer.provide(NodeHttpClient.layerUndici))

/** put, list, get and delete one object through a store built on `auth`. */
const roundTrip = (layer: Layer.Layer<ObjectStore>) =>
  Effect.gen(function* () {
    const store = yield* ObjectStore
    const container = uniqueContainer("auth")
    yield* store.ensureContainer(container)
    yield* store.put(container, "volume_v/20260101000000/az_nova_backup_b-00001", bytes("through Swift"))
    expect(yield* store.list(container, "volume_v/")).toEqual(["volume_v/20260101000000/az_nova_backup_b-00001"])
    expect(text(yield* store.get(container, "volume_v/20260101000000/az_nova_backup_b-00001"))).toBe("through Swift")
    yield* store.delete(container, "volume_v/20260101000000/az_nova_backup_b-00001")
  }).pipe(Effect.provide(layer))

if (loopback === undefined) {
  describe.skip(`Swift layer (${SKIP_REASON})`, () => {
    it("needs Swift", () => {})
  })
} else {
  const sw = loopback

  objectStoreConformance("swift (auth v1)", swiftStore(sw), {
    slashInObjectNames: true,
    nestedContainers: false,
    refusingLayer: swiftStore(sw, { createContainers: false })
  })

  describe("Swift authentication", () => {
    it.effect("auth v1 (tempauth): user and key", () =>
      roundTrip(withAuth({ type: "v1", authUrl: sw.authUrl, user: sw.user, key: Redacted.make(sw.key) }))
    )

    it.effect("a pre-obtained token and storage URL", () =>
      Effect.flatMap(
        Effect.promise(() => tempauthToken(sw)),
        ({ token, storageUrl }) => roundTrip(withAuth({ type: "token", storageUrl, token: Redacted.make(token) }))
      )
    )

    it.effect("a wrong key is a StoreAuthError that does not show the key", () =>
      Effect.gen(function* () {
        const store = yield* ObjectStore
        const error = yield* Effect.flip(store.ensureContainer(uniqueContainer()))
        expect(error._tag).toBe("StoreAuthError")
        expect(error.message).toContain("401")
        expect(error.message).not.toContain("not-the-key")
        expect(JSON.stringify(error)).not.toContain("not-the-key")
      }).pipe(Effect.provide(withAuth({ type: "v1", authUrl: sw.authUrl, user: sw.user, key: Redacted.make("not-the-key") })))
    )

    it.effect("a rejected pre-obtained token is a StoreAuthError at once (nothing to renew it with)", () =>
      Effect.gen(function* () {
        const { storageUrl } = yield* Effect.promise(() => tempauthToken(sw))
        const error = yield* Effect.flip(
          Effect.flatMap(ObjectStore, (store) => store.list(uniqueContainer(), "")).pipe(
            Effect.provide(withAuth({ type: "token", storageUrl, token: Redacted.make("AUTH_tkbogus") }))
          )
        )
        expect(error._tag).toBe("StoreAuthError")
        expect(error.message).not.toContain("AUTH_tkbogus")
      })
    )

    it.effect.skipIf(sw.memcached === undefined)("an expired token is renewed once and the call goes through", () =>
      Effect.gen(function* () {
        const store = yield* ObjectStore
        const container = uniqueContainer("renew")
        yield* store.ensureContainer(container) // authenticates
        // tempauth hands the same live token to every login of a user: this is the layer's.
        const { token } = yield* Effect.promise(() => tempauthToken(sw))
        expect(yield* Effect.promise(() => expireTempauthToken(sw.memcached!, token))).toBe("DELETED")
        yield* store.put(container, "after-expiry", bytes("renewed"))
        expect(text(yield* store.get(container, "after-expiry"))).toBe("renewed")
        const { token: next } = yield* Effect.promise(() => tempauthToken(sw))
        expect(next).not.toBe(token)
      }).pipe(Effect.provide(swiftStore(sw)))
    )

    const ks = sw.keystone
    describe.skipIf(ks === undefined)("Keystone v3 (a real Keystone from Debian's python3-keystone)", () => {
      const keystone = (password: string, extra: Partial<Extract<SwiftAuth, { type: "keystone" }>> = {}) =>
        withAuth({
          type: "keystone",
          authUrl: ks!.url,
          username: ks!.user,
          password: Redacted.make(password),
          projectName: ks!.project,
          ...extra
        })

      it.effect("password auth: a token and the object-store endpoint from the catalog", () =>
        roundTrip(keystone(ks!.password))
      )

      it.effect("the URL without /v3, ids instead of names where given, the internal interface", () =>
        roundTrip(keystone(ks!.password, { authUrl: ks!.url.replace(/\/v3$/, ""), userDomainId: "default", interface: "internal", region: "RegionOne" }))
      )

      it.effect("a wrong password is a StoreAuthError without the password", () =>
        Effect.gen(function* () {
          const store = yield* ObjectStore
          const error = yield* Effect.flip(store.list(uniqueContainer(), ""))
          expect(error._tag).toBe("StoreAuthError")
          expect(error.message).not.toContain("wrong-password-xyz")
        }).pipe(Effect.provide(keystone("wrong-password-xyz")))
      )

      it.effect("a region without an object-store endpoint is a StoreError naming it", () =>
        Effect.gen(function* () {
          const store = yield* ObjectStore
          const error = yield* Effect.flip(store.list(uniqueContainer(), ""))
          expect(error._tag).toBe("StoreError")
          expect(error.message).toContain("Mars-1")
        }).pipe(Effect.provide(keystone(ks!.password, { region: "Mars-1" })))
      )
    })
  })
}
