/**
 * Swift (tempauth and Keystone) and S3 over HTTPS through a real TLS
 * terminator (stunnel4, test/support/tls.ts) with a certificate from a
 * private CA made here: the conformance suite, CLI round trips with the CA
 * given as `ca-file=` and as SWIFT_CA_FILE / AWS_CA_BUNDLE, `insecure=true`,
 * and the refusal without the CA: exit 9, the certificate problem named,
 * one connection (no retries).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll } from "vitest"
import { exitCodes } from "../../src/cli/errors.js"
import { layerHttpClientTls, layerS3, layerSwift, ObjectStore, type TlsOptions } from "../../src/index.js"
import { objectStoreConformance } from "../../src/testing/index.js"
import { cli } from "../support/cli.js"
import { withTempDir } from "../support/layers.js"
import { loopback, s3Options, SKIP_REASON, uniqueContainer } from "../support/swift.js"
import { haveTlsTools, startHttpsSchemeProxy, startTlsFront, stunnelLog } from "../support/tls.js"

const FIRST_PORT = 56300
const PROXY_PORT = 56390

if (loopback === undefined || !haveTlsTools) {
  describe.skip(`stores over TLS (${loopback === undefined ? SKIP_REASON : "stunnel4 or openssl missing"})`, () => {
    it("needs Swift and stunnel4", () => {})
  })
} else {
  const sw = loopback
  const keystoneBackend = sw.keystone === undefined ? undefined : new URL(sw.keystone.url).host
  // Swift with storage_url_scheme = https; the shared proxy (for S3); Keystone.
  const proxy = startHttpsSchemeProxy(PROXY_PORT)
  const backends = [proxy.backend, new URL(sw.s3Endpoint).host, ...(keystoneBackend === undefined ? [] : [keystoneBackend])]
  const front = startTlsFront(backends, FIRST_PORT)
  const swiftHttps = front.urls.get(proxy.backend)!
  const s3Https = front.urls.get(backends[1]!)!
  beforeAll(() => Promise.all([proxy.ready, front.ready]), 40_000)
  afterAll(() => {
    front.stop()
    proxy.stop()
  })

  const tls = (options: TlsOptions) => Layer.unwrapEffect(Effect.orDie(layerHttpClientTls(options)))
  const swiftTls = (options: TlsOptions) =>
    layerSwift({ auth: { type: "v1", authUrl: `${swiftHttps}/auth/v1.0`, user: sw.user, key: Redacted.make(sw.key) } }).pipe(
      Layer.provide(tls(options))
    )

  objectStoreConformance("swift (tempauth) over HTTPS, private CA", swiftTls({ caFile: front.caFile }), { slashInObjectNames: true, nestedContainers: false })
  objectStoreConformance("s3 over HTTPS, private CA", layerS3(s3Options(sw, { endpoint: s3Https })).pipe(Layer.provide(tls({ caFile: front.caFile }))), {
    slashInObjectNames: true,
    nestedContainers: false
  })

  describe("stores over TLS", () => {
    if (sw.keystone !== undefined) {
      const ks = sw.keystone
      it.live("Keystone v3 auth over HTTPS with the CA", () =>
        Effect.gen(function* () {
          const store = yield* ObjectStore
          const container = uniqueContainer("ks")
          yield* store.ensureContainer(container)
          yield* store.put(container, "o", new TextEncoder().encode("via keystone over tls"))
          expect(new TextDecoder().decode(yield* store.get(container, "o"))).toBe("via keystone over tls")
          yield* store.delete(container, "o")
        }).pipe(
          Effect.provide(
            layerSwift({
              auth: {
                type: "keystone",
                authUrl: `${front.urls.get(keystoneBackend!)!}/v3`,
                username: ks.user,
                password: Redacted.make(ks.password),
                projectName: ks.project,
                userDomainName: "Default",
                projectDomainName: "Default"
              }
            }).pipe(Layer.provide(tls({ caFile: front.caFile })))
          )
        )
      )
    }

    const swiftEnv = { SWIFT_USER: sw.user, SWIFT_KEY: sw.key }
    const swiftUrl = (query: string) => `swift://${new URL(swiftHttps).host}/auth/v1.0?create-container=true&container=${uniqueContainer("tls")}${query}`

    /** backup then restore through the CLI on `store`; the restored bytes equal the volume's. */
    const roundTrip = (store: string, env: Record<string, string>) =>
      withTempDir((dir) =>
        Effect.gen(function* () {
          const volume = join(dir, "disk.img")
          const data = randomBytes(1024 * 1024 + 17)
          writeFileSync(volume, data)
          const all = { CHUNKED_BACKUP_REPO: join(dir, "repo"), ...env }
          const backup = yield* cli(["backup", volume, "--store", store, "--chunk-size", "262144"], all)
          expect(backup.code, backup.stderr).toBe(0)
          const restored = yield* cli(["restore", backup.stdout.trim(), join(dir, "out.img"), "--new", "--store", store], all)
          expect(restored.code, restored.stderr).toBe(0)
          expect(readFileSync(join(dir, "out.img")).equals(data)).toBe(true)
          return { backup, restored }
        })
      )

    it.live("CLI round trip on Swift over HTTPS with ca-file= in the store URL", () =>
      roundTrip(swiftUrl(`&ca-file=${encodeURIComponent(front.caFile)}`), swiftEnv)
    )

    it.live("CLI round trip on Swift over HTTPS with SWIFT_CA_FILE", () =>
      roundTrip(swiftUrl(""), { ...swiftEnv, SWIFT_CA_FILE: front.caFile })
    )

    const s3Env = { AWS_ACCESS_KEY_ID: sw.s3AccessKey, AWS_SECRET_ACCESS_KEY: sw.s3SecretKey }
    const s3Url = (query: string) =>
      `s3://${uniqueContainer("tls")}?endpoint=${encodeURIComponent(s3Https)}&region=${sw.s3Region}&path-style=true&create-bucket=true${query}`

    it.live("CLI round trip on S3 over HTTPS with AWS_CA_BUNDLE, and with ca-file=", () =>
      Effect.gen(function* () {
        yield* roundTrip(s3Url(""), { ...s3Env, AWS_CA_BUNDLE: front.caFile })
        yield* roundTrip(s3Url(`&ca-file=${encodeURIComponent(front.caFile)}`), s3Env)
      })
    )

    it.live("insecure=true connects without the CA and says so on stderr, once per command", () =>
      Effect.gen(function* () {
        const { backup } = yield* roundTrip(swiftUrl("&insecure=true"), swiftEnv)
        expect(backup.stderr.match(/NOT verified/g)?.length).toBe(1)
      })
    )

    const connections = () => (stunnelLog(front).match(/accepted connection/g) ?? []).length

    for (const [what, query, problem] of [
      ["no CA", "", /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/],
      ["another CA", "&ca-file=OTHER", /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT|SELF_SIGNED_CERT_IN_CHAIN/]
    ] as const) {
      it.live(`with ${what} the certificate is refused: exit 9, the problem named, one connection, no retries`, () =>
        withTempDir((dir) =>
          Effect.gen(function* () {
            const volume = join(dir, "disk.img")
            writeFileSync(volume, randomBytes(65536))
            const before = connections()
            const started = Date.now()
            const store = swiftUrl(query.replace("OTHER", encodeURIComponent(front.otherCaFile)))
            const result = yield* cli(["backup", volume, "--store", store], { ...swiftEnv, CHUNKED_BACKUP_REPO: join(dir, "repo") })
            expect(result.code, result.stderr).toBe(exitCodes.StoreError)
            expect(result.code).toBe(9)
            expect(result.stderr).toMatch(problem)
            expect(result.stderr).toContain("TLS certificate refused")
            expect(result.stderr).toContain("of cb-tls-")
            // Five retries with back-off would take seconds and open six connections.
            expect(Date.now() - started).toBeLessThan(8000)
            yield* Effect.sleep("200 millis")
            expect(connections() - before).toBe(1)
          })
        )
      )
    }

    it.live("a certificate for another host name is refused even with the right CA: exit 9 naming the mismatch", () =>
      withTempDir((dir) =>
        Effect.gen(function* () {
          writeFileSync(join(dir, "disk.img"), randomBytes(4096))
          const store = `swift://${new URL(front.wrongNameUrl).host}/auth/v1.0?ca-file=${encodeURIComponent(front.caFile)}`
          const result = yield* cli(["backup", join(dir, "disk.img"), "--store", store], { ...swiftEnv, CHUNKED_BACKUP_REPO: join(dir, "repo") })
          expect(result.code, result.stderr).toBe(9)
          expect(result.stderr).toMatch(/TLS certificate refused \(ERR_TLS_CERT_ALTNAME_INVALID: .*127\.0\.0\.1/)
        })
      )
    )

    it.live("S3 without the CA: exit 9 naming the certificate problem", () =>
      withTempDir((dir) =>
        Effect.gen(function* () {
          const volume = join(dir, "disk.img")
          writeFileSync(volume, randomBytes(65536))
          const result = yield* cli(["backup", volume, "--store", s3Url("")], { ...s3Env, CHUNKED_BACKUP_REPO: join(dir, "repo") })
          expect(result.code, result.stderr).toBe(9)
          expect(result.stderr).toMatch(/TLS certificate refused \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)/)
        })
      )
    )

    it.live("a CA file that is not PEM is refused before any connection (exit 3)", () =>
      withTempDir((dir) =>
        Effect.gen(function* () {
          writeFileSync(join(dir, "ca.pem"), "not a certificate")
          writeFileSync(join(dir, "disk.img"), randomBytes(4096))
          const result = yield* cli(["backup", join(dir, "disk.img"), "--store", swiftUrl(`&ca-file=${join(dir, "ca.pem")}`)], {
            ...swiftEnv,
            CHUNKED_BACKUP_REPO: join(dir, "repo")
          })
          expect(result.code, result.stderr).toBe(exitCodes.InvalidRequest)
          expect(result.stderr).toContain("holds no PEM certificate")
        })
      )
    )
  })
}
