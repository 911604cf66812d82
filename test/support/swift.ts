/**
 * The loopback Swift of scripts/swift-loopback.sh, as tests see it: its
 * endpoints come from the SWIFT_LOOPBACK_* variables that `swift-loopback.sh
 * env` prints (.ci/run always sets them). Tests that need it are skipped
 * only when those variables are absent.
 */
import { NodeHttpClient } from "@effect/platform-node"
import { Effect, Layer, Redacted } from "effect"
import { spawn } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import { Socket } from "node:net"
import { fileURLToPath } from "node:url"
import {
  layerMemoryCatalog,
  layerS3,
  layerSwift,
  ObjectStore,
  type S3StoreOptions,
  type SwiftStoreOptions
} from "../../src/index.js"
import { DEBIAN_PYTHON } from "./debianPython.js"
import { localServices } from "./layers.js"

const env = process.env

export interface LoopbackSwift {
  readonly authUrl: string
  readonly user: string
  readonly key: string
  readonly s3Endpoint: string
  readonly s3Region: string
  readonly s3AccessKey: string
  readonly s3SecretKey: string
  /** s3api's storage_domain, for virtual-hosted addressing */
  readonly s3Domain: string | undefined
  /** host:port of the memcached holding tempauth's tokens */
  readonly memcached: string | undefined
  readonly keystone:
    | { readonly url: string; readonly user: string; readonly password: string; readonly project: string }
    | undefined
}

export const loopback: LoopbackSwift | undefined =
  env.SWIFT_LOOPBACK_AUTH_URL !== undefined && env.SWIFT_LOOPBACK_S3_ENDPOINT !== undefined
    ? {
        authUrl: env.SWIFT_LOOPBACK_AUTH_URL,
        user: env.SWIFT_LOOPBACK_USER ?? "test:tester",
        key: env.SWIFT_LOOPBACK_KEY ?? "testing",
        s3Endpoint: env.SWIFT_LOOPBACK_S3_ENDPOINT,
        s3Region: env.SWIFT_LOOPBACK_S3_REGION ?? "us-east-1",
        s3AccessKey: env.SWIFT_LOOPBACK_S3_ACCESS_KEY ?? "test:tester",
        s3SecretKey: env.SWIFT_LOOPBACK_S3_SECRET_KEY ?? "testing",
        s3Domain: env.SWIFT_LOOPBACK_S3_DOMAIN,
        memcached: env.SWIFT_LOOPBACK_MEMCACHED,
        keystone:
          env.SWIFT_LOOPBACK_KEYSTONE_URL === undefined
            ? undefined
            : {
                url: env.SWIFT_LOOPBACK_KEYSTONE_URL,
                user: env.SWIFT_LOOPBACK_KEYSTONE_USER ?? "swiftuser",
                password: env.SWIFT_LOOPBACK_KEYSTONE_PASSWORD ?? "",
                project: env.SWIFT_LOOPBACK_KEYSTONE_PROJECT ?? "backups"
              }
      }
    : undefined

/** Why a Swift test is skipped. */
export const SKIP_REASON = "no loopback Swift (run `eval \"$(scripts/swift-loopback.sh env)\"` after `scripts/swift-loopback.sh start`)"

/** A container name nobody else uses (a valid S3 bucket name too). */
export const uniqueContainer = (tag = "t") => `cb-${tag}-${randomBytes(5).toString("hex")}`

export const swiftOptions = (sw: LoopbackSwift, extra: Partial<SwiftStoreOptions> = {}): SwiftStoreOptions => ({
  auth: { type: "v1", authUrl: sw.authUrl, user: sw.user, key: Redacted.make(sw.key) },
  ...extra
})

export const s3Options = (sw: LoopbackSwift, extra: Partial<S3StoreOptions> = {}): S3StoreOptions => ({
  endpoint: sw.s3Endpoint,
  region: sw.s3Region,
  pathStyle: true,
  accessKeyId: sw.s3AccessKey,
  secretAccessKey: Redacted.make(sw.s3SecretKey),
  ...extra
})

export const swiftStore = (sw: LoopbackSwift, extra: Partial<SwiftStoreOptions> = {}): Layer.Layer<ObjectStore> =>
  layerSwift(swiftOptions(sw, extra)).pipe(Layer.provide(NodeHttpClient.layerUndici))

export const s3Store = (sw: LoopbackSwift, extra: Partial<S3StoreOptions> = {}): Layer.Layer<ObjectStore> =>
  layerS3(s3Options(sw, extra)).pipe(Layer.provide(NodeHttpClient.layerUndici))

/** A store + memory catalog + Node's FileSystem, for driver programs. */
export const servicesOn = (store: Layer.Layer<ObjectStore>) => Layer.mergeAll(store, layerMemoryCatalog(), localServices)

/** Sends one memcached text command to `memcached` (host:port) and resolves with its one-line answer. */
const memcachedCommand = (memcached: string, command: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const [host, port] = memcached.split(":")
    const socket = new Socket()
    let answer = ""
    socket.setTimeout(5000, () => socket.destroy(new Error("memcached timed out")))
    socket.on("error", reject)
    socket.on("data", (data) => {
      answer += data.toString()
      if (answer.endsWith("\r\n")) {
        socket.end()
        resolve(answer.trim())
      }
    })
    socket.connect(Number(port), host!, () => socket.write(`${command}\r\n`))
  })

/**
 * Expires a tempauth token the way its lifetime would: removes it from
 * memcached (tempauth keeps `AUTH_/token/<token>` there, under the md5 of
 * that key as Swift's MemcacheRing stores it).
 */
export const expireTempauthToken = (memcached: string, token: string): Promise<string> =>
  memcachedCommand(memcached, `delete ${createHash("md5").update(`AUTH_/token/${token}`).digest("hex")}`)

/**
 * Empties memcached: every token a proxy validated (tempauth's, and the
 * Keystone tokens authtoken cached) must be checked again on its next use.
 */
export const flushMemcached = (memcached: string): Promise<string> => memcachedCommand(memcached, "flush_all")

/** Fetches a tempauth token and storage URL with plain fetch (independent of the layer under test). */
export const tempauthToken = async (sw: LoopbackSwift) => {
  const response = await fetch(sw.authUrl, { headers: { "x-auth-user": sw.user, "x-auth-key": sw.key } })
  if (!response.ok) throw new Error(`tempauth answered ${response.status}`)
  return { token: response.headers.get("x-auth-token")!, storageUrl: response.headers.get("x-storage-url")! }
}

export const SWIFT_ORACLE_SCRIPT = fileURLToPath(new URL("../oracle/cinder_swift.py", import.meta.url))

/** One run of test/oracle/cinder_swift.py (Cinder's SwiftBackupDriver) under Debian's Python. */
export const runSwiftOracle = (request: object): Promise<Record<string, unknown>> =>
  new Promise((resolve, reject) => {
    const child = spawn(DEBIAN_PYTHON, ["-I", SWIFT_ORACLE_SCRIPT], { stdio: ["pipe", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000)
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d))
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d))
    child.on("error", (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.on("close", (code) => {
      clearTimeout(timer)
      let answer: Record<string, unknown>
      try {
        answer = JSON.parse(stdout.trim()) as Record<string, unknown>
      } catch {
        return reject(new Error(`Cinder Swift oracle exited ${code} without JSON: ${stdout.slice(-2000)}\n${stderr.slice(-2000)}`))
      }
      if (code !== 0 || "error" in answer) {
        return reject(new Error(`Cinder Swift oracle failed: ${String(answer.error)}: ${String(answer.message)}\n${stderr.slice(-2000)}`))
      }
      resolve(answer)
    })
    child.stdin.on("error", () => {})
    child.stdin.end(JSON.stringify(request))
  })

/** The names of the objects in `container` of the loopback Swift ([] when there is no such container). */
export const swiftObjectsIn = (container: string) =>
  Effect.flatMap(ObjectStore, (store) => store.list(container, "")).pipe(
    Effect.catchTag("ContainerNotFound", () => Effect.succeed([])),
    Effect.provide(swiftStore(loopback!))
  )
