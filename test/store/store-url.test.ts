/**
 * Store URLs and Config for the Swift and S3 layers: what `--store` accepts,
 * what the environment supplies, that secrets stay Redacted; and the CLI
 * end to end on the loopback Swift (when SWIFT_LOOPBACK_* is set).
 */
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Redacted } from "effect"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describeConfigError, parseStoreUrl, s3Config, swiftConfig } from "../../src/index.js"
import { storeLayer } from "../../src/cli/environment.js"
import { cli } from "../support/cli.js"
import { loopback, uniqueContainer } from "../support/swift.js"

const settings = (url: string) => {
  const parsed = parseStoreUrl(url)
  if (parsed === undefined || Either.isLeft(parsed)) throw new Error(`not parsed: ${url}`)
  return { kind: parsed.right.kind, settings: Object.fromEntries(parsed.right.settings) }
}
const refusal = (url: string) => {
  const parsed = parseStoreUrl(url)
  return parsed !== undefined && Either.isLeft(parsed) ? parsed.left : undefined
}
const withEnv = (env: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("store URLs", () => {
  it("swift+http:// is an auth v1 URL; a path ending in /v3 is Keystone; auth=token makes it the storage URL", () => {
    expect(settings("swift+http://127.0.0.1:8080/auth/v1.0?container=backups&create-container=false")).toEqual({
      kind: "swift",
      settings: {
        SWIFT_AUTH: "v1",
        SWIFT_AUTH_URL: "http://127.0.0.1:8080/auth/v1.0",
        SWIFT_CONTAINER: "backups",
        SWIFT_CREATE_CONTAINER: "false"
      }
    })
    expect(settings("swift://keystone.example.com:5000/v3?region=RegionTwo&interface=internal").settings).toEqual({
      SWIFT_AUTH: "v3",
      OS_AUTH_URL: "https://keystone.example.com:5000/v3",
      OS_REGION_NAME: "RegionTwo",
      OS_INTERFACE: "internal"
    })
    expect(settings("swift+https://swift.example.com/v1/AUTH_p?auth=token").settings).toEqual({
      SWIFT_AUTH: "token",
      SWIFT_STORAGE_URL: "https://swift.example.com/v1/AUTH_p"
    })
    expect(settings("swift")).toEqual({ kind: "swift", settings: {} })
  })

  it("s3://bucket with endpoint, region and addressing", () => {
    expect(settings("s3://volumebackups?endpoint=http://127.0.0.1:8080&region=us-east-1&path-style=true")).toEqual({
      kind: "s3",
      settings: { S3_BUCKET: "volumebackups", S3_ENDPOINT_URL: "http://127.0.0.1:8080", AWS_REGION: "us-east-1", S3_PATH_STYLE: "true" }
    })
    expect(settings("s3")).toEqual({ kind: "s3", settings: {} })
  })

  it("refuses credentials in URLs, unknown parameters and unknown auth kinds; ignores other schemes", () => {
    expect(refusal("swift+http://test:tester:testing@127.0.0.1:8080/auth/v1.0")).toContain("no credentials")
    expect(refusal("s3://AKID:secret@bucket")).toContain("no credentials")
    expect(refusal("s3://bucket?secret=x")).toContain('unknown parameter "secret"')
    expect(refusal("swift+http://h/auth?auth=v9")).toContain("auth=v9")
    expect(parseStoreUrl("posix:/srv/backups")).toBeUndefined()
  })
})

describe("Swift and S3 Config", () => {
  it.effect("auth v1 from the environment; the key stays Redacted", () =>
    Effect.gen(function* () {
      const options = yield* swiftConfig
      expect(options.auth).toMatchObject({ type: "v1", authUrl: "http://h/auth/v1.0", user: "a:u" })
      expect(options.auth.type === "v1" && Redacted.value(options.auth.key)).toBe("k3y")
      expect(JSON.stringify(options) + String(options.auth.type === "v1" && options.auth.key)).not.toContain("k3y")
      expect(options).toMatchObject({ container: "c", chunkSize: 1048576 })
    }).pipe(withEnv({ SWIFT_AUTH_URL: "http://h/auth/v1.0", SWIFT_USER: "a:u", SWIFT_KEY: "k3y", SWIFT_CONTAINER: "c", SWIFT_OBJECT_SIZE: "1048576" }))
  )

  it.effect("Keystone v3 from OS_* variables", () =>
    Effect.gen(function* () {
      const options = yield* swiftConfig
      expect(options.auth).toMatchObject({ type: "keystone", authUrl: "http://k:5000/v3", username: "u", projectName: "p", region: "R" })
    }).pipe(withEnv({ OS_AUTH_URL: "http://k:5000/v3", OS_USERNAME: "u", OS_PASSWORD: "pw", OS_PROJECT_NAME: "p", OS_REGION_NAME: "R" }))
  )

  it.effect("a token wins; missing pieces are named, never valued", () =>
    Effect.gen(function* () {
      const token = yield* swiftConfig.pipe(withEnv({ SWIFT_STORAGE_URL: "http://s/v1/AUTH_x", SWIFT_AUTH_TOKEN: "tkn", SWIFT_AUTH_URL: "http://h" }))
      expect(token.auth.type).toBe("token")
      const missing = yield* Effect.flip(swiftConfig.pipe(withEnv({ SWIFT_AUTH_URL: "http://h", SWIFT_USER: "u" })))
      expect(String(missing)).toContain("SWIFT_KEY")
      const nothing = yield* Effect.flip(swiftConfig.pipe(withEnv({})))
      expect(String(nothing)).toContain("OS_AUTH_URL")
    })
  )

  it.effect("S3 from AWS_* and S3_* variables", () =>
    Effect.gen(function* () {
      const options = yield* s3Config
      expect(options).toMatchObject({ accessKeyId: "AKID", region: "eu-west-3", bucket: "b", pathStyle: true })
      expect(Redacted.value(options.sseCustomerKey!)).toBe("k".repeat(32))
      expect(JSON.stringify(options)).not.toContain("sekret")
    }).pipe(
      withEnv({
        AWS_ACCESS_KEY_ID: "AKID",
        AWS_SECRET_ACCESS_KEY: "sekret",
        AWS_DEFAULT_REGION: "eu-west-3",
        S3_BUCKET: "b",
        S3_PATH_STYLE: "true",
        S3_SSE_CUSTOMER_KEY: "k".repeat(32)
      })
    )
  )

  it.effect("the CLI's storeLayer turns a missing setting into an InvalidRequest naming it", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(storeLayer("s3://bucket?endpoint=http://127.0.0.1:1"))
      expect(error._tag).toBe("InvalidRequest")
      expect(error.message).toBe(
        "store s3://bucket?endpoint=http://127.0.0.1:1: the settings AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set (environment variables)"
      )
    }).pipe(withEnv({}))
  )

  it.effect("a setting that is set but malformed is named as not valid, not as missing", () => {
    // Two providers, as storeUrlLayer reads the URL's settings and then the environment.
    const described = (url: Record<string, string>, env: Record<string, string>) =>
      Effect.map(
        Effect.flip(Effect.withConfigProvider(s3Config, ConfigProvider.orElse(ConfigProvider.fromMap(new Map(Object.entries(url))), () => ConfigProvider.fromMap(new Map(Object.entries(env)))))),
        describeConfigError
      )
    return Effect.gen(function* () {
      expect(yield* described({ S3_BUCKET: "b" }, { AWS_ACCESS_KEY_ID: "a", AWS_SECRET_ACCESS_KEY: "b", S3_TIMEOUT: "soon" })).toBe(
        'S3_TIMEOUT is not valid: expected a number value but received "soon"'
      )
      expect(yield* described({ S3_BUCKET: "b" }, { AWS_ACCESS_KEY_ID: "a" })).toBe(
        "the setting AWS_SECRET_ACCESS_KEY is not set (environment variables)"
      )
      expect(yield* described({}, {})).toBe("the settings AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set (environment variables)")
    })
  })

  it("an s3:// bucket keeps the case it was typed in", () => {
    expect(settings("s3://Mixed_Case?region=eu-west-1").settings).toEqual({ S3_BUCKET: "Mixed_Case", AWS_REGION: "eu-west-1" })
  })
})

const sw = loopback
describe.skipIf(sw === undefined)("the CLI on the loopback Swift", () => {
  const volume = new Uint8Array(3 * 1024 * 1024 + 7).map((_, i) => (i * 7919) % 251)

  const roundTrip = (store: string, env: Record<string, string>, secret: string) =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(tmpdir(), "cb-cli-net-"))
      try {
        writeFileSync(join(dir, "vol.img"), volume)
        const args = ["--repo", join(dir, "repo"), "--store", store, "--json"]
        const made = yield* cli([...args, "backup", join(dir, "vol.img")], env)
        expect(made.code, made.stderr).toBe(0)
        const id = JSON.parse(made.stdout).id as string
        const restored = yield* cli([...args, "restore", id, join(dir, "out.img"), "--new"], env)
        expect(restored.code, restored.stderr).toBe(0)
        expect(Buffer.from(readFileSync(join(dir, "out.img"))).equals(Buffer.from(volume))).toBe(true)
        for (const output of [made, restored]) expect(output.stdout + output.stderr).not.toContain(secret)
        const denied = yield* cli([...args, "backup", join(dir, "vol.img")], Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === secret ? "wrong" : v])))
        expect(denied.code).toBe(9)
        expect(denied.stderr).toContain("authentication failed")
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    })

  it.live("--store swift+http://…/auth/v1.0 with SWIFT_USER/SWIFT_KEY: backup, restore, a wrong key exits 9", () =>
    roundTrip(
      `swift+http://${new URL(sw!.authUrl).host}/auth/v1.0?container=${uniqueContainer("cli")}`,
      { SWIFT_USER: sw!.user, SWIFT_KEY: sw!.key },
      sw!.key
    )
  )

  it.live("S3 refusals name the S3 error code: an invalid bucket name, a wrong secret (exit 9)", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(tmpdir(), "cb-cli-s3-"))
      try {
        writeFileSync(join(dir, "vol.img"), volume)
        const env = { AWS_ACCESS_KEY_ID: sw!.s3AccessKey, AWS_SECRET_ACCESS_KEY: sw!.s3SecretKey }
        const backupTo = (bucket: string, extra: Record<string, string> = {}) =>
          cli(["--repo", join(dir, "repo"), "--store", `s3://${bucket}?endpoint=${sw!.s3Endpoint}&region=${sw!.s3Region}&path-style=true`, "backup", join(dir, "vol.img")], { ...env, ...extra })
        const badName = yield* backupTo("Bad_Bucket!")
        expect(badName.code).toBe(9)
        expect(badName.stderr).toContain("Bad_Bucket!")
        expect(badName.stderr).toContain("InvalidBucketName")
        const wrongSecret = yield* backupTo(uniqueContainer("cli"), { AWS_SECRET_ACCESS_KEY: "wrong" })
        expect(wrongSecret.code).toBe(9)
        expect(wrongSecret.stderr).toContain("SignatureDoesNotMatch")
        expect(wrongSecret.stderr).not.toContain("the bucket exists")
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    })
  )

  it.live("--store s3://bucket?endpoint=…&path-style=true with AWS_* keys", () =>
    roundTrip(
      `s3://${uniqueContainer("cli")}?endpoint=${sw!.s3Endpoint}&region=${sw!.s3Region}&path-style=true`,
      { AWS_ACCESS_KEY_ID: sw!.s3AccessKey, AWS_SECRET_ACCESS_KEY: sw!.s3SecretKey },
      sw!.s3SecretKey
    )
  )
})
