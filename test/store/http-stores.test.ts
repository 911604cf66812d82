/**
 * Behaviours of the Swift and S3 layers that a healthy Swift does not show
 * on demand, against small loopback HTTP servers written here: one renewal
 * of an expired token (and no second), 5xx/timeouts/resets classified as
 * transient and retried by withRetry, checksum mismatches, bodies that break
 * off, SSE-C and Content-Length on the wire, and secrets kept out of errors
 * and logs. (The real-server tests are swift.test.ts and s3.test.ts.)
 */
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, Fiber, Layer, Logger, Redacted } from "effect"
import { createHash } from "node:crypto"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { layerS3, layerSwift, ObjectStore, withRetry, type S3StoreOptions, type SwiftAuth } from "../../src/index.js"

type Handler = (req: IncomingMessage, body: Buffer, res: ServerResponse) => void

/** A server on 127.0.0.1 for the duration of the scope; `handler` sees each request with its whole body. */
const fakeServer = (handler: Handler) =>
  Effect.acquireRelease(
    Effect.async<{ readonly url: string; readonly close: () => void }>((resume) => {
      const server = createServer((req, res) => {
        const chunks: Array<Buffer> = []
        req.on("data", (c: Buffer) => chunks.push(c))
        req.on("end", () => handler(req, Buffer.concat(chunks), res))
      })
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo
        resume(Effect.succeed({ url: `http://127.0.0.1:${port}`, close: () => server.close() }))
      })
    }),
    (server) =>
      Effect.sync(() => {
        server.close()
      })
  )

const md5hex = (b: Uint8Array) => createHash("md5").update(b).digest("hex")
const swiftAt = (auth: SwiftAuth, timeout = 5000) =>
  layerSwift({ auth, timeout }).pipe(Layer.provide(NodeHttpClient.layerUndici))
const s3At = (url: string, extra: Partial<S3StoreOptions> = {}) =>
  layerS3({ endpoint: url, accessKeyId: "AKID", secretAccessKey: Redacted.make("s3-secret-value"), timeout: 5000, ...extra }).pipe(
    Layer.provide(NodeHttpClient.layerUndici)
  )
const useStore = <A, E>(layer: Layer.Layer<ObjectStore>, f: (store: ObjectStore) => Effect.Effect<A, E>) =>
  Effect.provide(Effect.flatMap(ObjectStore, f), layer)

/** A Swift with tempauth-like auth: tokens tok-1, tok-2, …; `accepts` decides which token the storage takes. */
const fakeSwift = (accepts: (token: string, authCalls: number) => boolean, onStorage: Handler = defaultStorage) => {
  const state = { authCalls: 0, storageCalls: 0, url: "" }
  return Effect.map(
    fakeServer((req, body, res) => {
      if (req.url === "/auth/v1.0") {
        state.authCalls++
        if (req.headers["x-auth-key"] !== "the-key") return res.writeHead(401).end()
        return res.writeHead(200, { "x-auth-token": `tok-${state.authCalls}`, "x-storage-url": `${state.url}/v1/AUTH_t` }).end()
      }
      state.storageCalls++
      if (!accepts(String(req.headers["x-auth-token"]), state.authCalls)) return res.writeHead(401).end("<html>Unauthorized</html>")
      onStorage(req, body, res)
    }),
    (server) => {
      state.url = server.url
      return { state, auth: { type: "v1", authUrl: `${server.url}/auth/v1.0`, user: "t:u", key: Redacted.make("the-key") } as const }
    }
  )
}
function defaultStorage(req: IncomingMessage, body: Buffer, res: ServerResponse) {
  if (req.method === "PUT") return res.writeHead(201, { etag: md5hex(body) }).end()
  if (req.method === "HEAD") return res.writeHead(204).end()
  if (req.method === "GET") return res.writeHead(200, { "content-length": "2" }).end("ok")
  res.writeHead(204).end()
}

describe("Swift layer against a fake server", () => {
  it.scoped("an expired token is renewed once, then the call is sent again", () =>
    Effect.gen(function* () {
      // The first token dies after the first storage call.
      const { state, auth } = yield* fakeSwift((token) => token !== "tok-1" || stale++ === 0)
      let stale = 0
      yield* useStore(swiftAt(auth), (store) =>
        Effect.gen(function* () {
          yield* store.ensureContainer("c")
          yield* store.put("c", "o", new Uint8Array([1]))
        })
      )
      expect(state.authCalls).toBe(2)
    })
  )

  it.scoped("a token refused right after renewal is a StoreAuthError: one renewal, no loop", () =>
    Effect.gen(function* () {
      const { state, auth } = yield* fakeSwift(() => false)
      const error = yield* Effect.flip(useStore(swiftAt(auth), (store) => store.put("c", "o", new Uint8Array([1]))))
      expect(error._tag).toBe("StoreAuthError")
      expect(state.authCalls).toBe(2)
      expect(state.storageCalls).toBe(2)
    })
  )

  it.scoped("calls that meet an expired token together share one renewal", () =>
    Effect.gen(function* () {
      const { state, auth } = yield* fakeSwift((token) => token !== "tok-1" || first-- > 0)
      let first = 1
      yield* useStore(swiftAt(auth), (store) =>
        Effect.zipRight(
          store.ensureContainer("c"),
          Effect.forEach([1, 2, 3, 4, 5, 6], (i) => store.put("c", `o${i}`, new Uint8Array([i])), { concurrency: "unbounded" })
        )
      )
      expect(state.authCalls).toBe(2)
    })
  )

  it.scopedLive("5xx is StoreUnavailable, and withRetry retries it until it passes", () =>
    Effect.gen(function* () {
      let puts = 0
      const { auth } = yield* fakeSwift(
        () => true,
        (req, body, res) => (req.method === "PUT" && puts++ < 2 ? res.writeHead(503).end("busy") : defaultStorage(req, body, res))
      )
      const once = yield* Effect.flip(useStore(swiftAt(auth), (store) => store.put("c", "o", new Uint8Array([1]))))
      expect(once._tag).toBe("StoreUnavailable")
      expect(once.message).toContain("503")
      yield* useStore(swiftAt(auth), (store) => withRetry(store, { baseDelay: 5 }).put("c", "o", new Uint8Array([1])))
      expect(puts).toBe(3)
    })
  )

  it.scopedLive("no answer within the timeout is StoreUnavailable", () =>
    Effect.gen(function* () {
      const { auth } = yield* fakeSwift(
        () => true,
        () => {} // never answers
      )
      const error = yield* Effect.flip(useStore(swiftAt(auth, 300), (store) => store.list("c", "")))
      expect(error._tag).toBe("StoreUnavailable")
      expect(error.message).toContain("no response within")
    })
  )

  // Effect's timeout waits for what it interrupts; the delete after a failed put runs uninterruptibly, and so
  // do finalizers: through a dead link such a request waited for the link to come back (the bad-network test).
  it.scopedLive("a store gone silent: a put, the delete it sends after, and a delete in a finalizer all end within their timeouts", () =>
    Effect.gen(function* () {
      const seen: Array<string> = []
      const { auth } = yield* fakeSwift(
        () => true,
        (req) => void seen.push(req.method ?? "") // never answers
      )
      const timed = <A, E>(effect: Effect.Effect<A, E>) =>
        Effect.map(Effect.timed(Effect.flip(effect)), ([elapsed, error]) => ({ millis: Duration.toMillis(elapsed), error }))
      const [put, finalizer] = yield* useStore(swiftAt(auth, 300), (store) =>
        Effect.all([timed(store.put("c", "o", new Uint8Array(10))), timed(Effect.uninterruptible(store.delete("c", "o")))])
      )
      expect(put.error._tag).toBe("StoreUnavailable")
      expect(put.millis).toBeLessThan(2000)
      expect(seen).toEqual(["PUT", "DELETE", "DELETE"])
      expect(finalizer.error._tag).toBe("StoreUnavailable")
      expect(finalizer.millis).toBeLessThan(1500)
    })
  )

  it.effect("a refused connection is StoreUnavailable", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        useStore(swiftAt({ type: "token", storageUrl: "http://127.0.0.1:1/v1/AUTH_x", token: Redacted.make("t") }), (store) =>
          store.get("c", "o")
        )
      )
      expect(error._tag).toBe("StoreUnavailable")
      expect(error.message).toContain("ECONNREFUSED")
    })
  )

  it.scopedLive("a body that breaks off before its Content-Length is StoreUnavailable", () =>
    Effect.gen(function* () {
      const { auth } = yield* fakeSwift(
        () => true,
        (_req, _body, res) => {
          res.writeHead(200, { "content-length": "1000" })
          res.write(Buffer.alloc(100))
          setTimeout(() => res.destroy(), 20)
        }
      )
      const error = yield* Effect.flip(useStore(swiftAt(auth), (store) => store.get("c", "o")))
      expect(error._tag).toBe("StoreUnavailable")
    })
  )

  it.scoped("an ETag that is not the md5 of the body is a ChecksumMismatch; 422 too", () =>
    Effect.gen(function* () {
      let calls = 0
      const { auth } = yield* fakeSwift(
        () => true,
        (req, body, res) =>
          req.method !== "PUT" ? defaultStorage(req, body, res) : calls++ === 0 ? res.writeHead(201, { etag: "0".repeat(32) }).end() : res.writeHead(422).end()
      )
      const wrong = yield* Effect.flip(useStore(swiftAt(auth), (store) => store.put("c", "o", new Uint8Array([1, 2]))))
      expect(wrong).toMatchObject({ _tag: "ChecksumMismatch", expected: md5hex(new Uint8Array([1, 2])), actual: "0".repeat(32) })
      const refused = yield* Effect.flip(useStore(swiftAt(auth), (store) => store.put("c", "o", new Uint8Array([1, 2]))))
      expect(refused._tag).toBe("ChecksumMismatch")
    })
  )

  it.scoped("uploads carry Content-Length and their md5 as ETag, never chunked transfer encoding", () =>
    Effect.gen(function* () {
      const seen: Array<Record<string, unknown>> = []
      const { auth } = yield* fakeSwift(
        () => true,
        (req, body, res) => {
          if (req.method === "PUT") seen.push({ ...req.headers, bodyLength: body.length })
          defaultStorage(req, body, res)
        }
      )
      const payload = new Uint8Array(300_000).fill(7)
      yield* useStore(swiftAt(auth), (store) => Effect.zipRight(store.put("c", "o", payload), store.put("c", "empty", new Uint8Array(0))))
      expect(seen[0]).toMatchObject({ "content-length": "300000", etag: md5hex(payload), bodyLength: 300000 })
      expect(seen[0]!["transfer-encoding"]).toBeUndefined()
      expect(seen[1]).toMatchObject({ "content-length": "0", bodyLength: 0 })
    })
  )

  it.scopedLive("an upload abandoned after its body was sent is followed by a DELETE of that object", () =>
    Effect.gen(function* () {
      const seen: Array<string> = []
      const { auth } = yield* fakeSwift(
        () => true,
        (req, body, res) => {
          seen.push(`${req.method} ${req.url}`)
          // The PUT's body is in; the answer comes too late for the caller.
          if (req.method === "PUT") return void setTimeout(() => defaultStorage(req, body, res), 400)
          defaultStorage(req, body, res)
        }
      )
      const exit = yield* useStore(swiftAt(auth), (store) =>
        Effect.gen(function* () {
          const fiber = yield* Effect.fork(store.put("c", "o", new Uint8Array(1000)))
          yield* Effect.sleep(150)
          return yield* Fiber.interrupt(fiber)
        })
      )
      expect(Exit.isInterrupted(exit)).toBe(true)
      expect(seen).toEqual(["PUT /v1/AUTH_t/c/o", "DELETE /v1/AUTH_t/c/o"])
    })
  )

  it.scoped("secrets stay out of errors and logs", () =>
    Effect.gen(function* () {
      const { auth } = yield* fakeSwift(() => false)
      const logs: Array<string> = []
      const logger = Logger.make(({ message, cause }) => logs.push(`${String(message)} ${Cause.pretty(cause)}`))
      const exit = yield* useStore(swiftAt({ ...auth, key: Redacted.make("the-key") }), (store) =>
        store.put("c", "o", new Uint8Array([1])).pipe(Effect.tapErrorCause((cause) => Effect.logError("put failed", cause)))
      ).pipe(Effect.exit, Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
      const everything = JSON.stringify(exit) + logs.join("\n") + String(exit)
      expect(logs.length).toBe(1)
      expect(everything).toContain("StoreAuthError")
      expect(everything).not.toContain("the-key")
      expect(everything).not.toMatch(/tok-\d/)
    })
  )
})

describe("S3 layer against a fake server", () => {
  const s3Answer = (res: ServerResponse, status: number, code: string) =>
    res.writeHead(status, { "content-type": "application/xml" }).end(`<?xml version="1.0"?><Error><Code>${code}</Code><Message>m</Message></Error>`)

  it.scoped("SSE-C: algorithm, base64 key and key md5 on every write and read; ETag not compared", () =>
    Effect.gen(function* () {
      const key = "0123456789abcdef0123456789abcdef"
      const seen: Array<IncomingMessage["headers"]> = []
      const server = yield* fakeServer((req, body, res) => {
        seen.push(req.headers)
        const ok =
          req.headers["x-amz-server-side-encryption-customer-algorithm"] === "AES256" &&
          req.headers["x-amz-server-side-encryption-customer-key"] === Buffer.from(key).toString("base64") &&
          req.headers["x-amz-server-side-encryption-customer-key-md5"] === createHash("md5").update(key).digest("base64")
        if (!ok) return s3Answer(res, 400, "InvalidRequest")
        if (req.method === "PUT") {
          expect(req.headers["content-md5"]).toBe(createHash("md5").update(body).digest("base64"))
          // Under SSE-C, S3's ETag is not the md5 of the data.
          return res.writeHead(200, { etag: '"ffffffffffffffffffffffffffffffff"' }).end()
        }
        res.writeHead(200, { "content-length": "5" }).end("plain")
      })
      const got = yield* useStore(s3At(server.url, { sseCustomerKey: Redacted.make(key) }), (store) =>
        Effect.zipRight(store.put("bucket", "o", new Uint8Array([1, 2, 3])), store.get("bucket", "o"))
      )
      expect(new TextDecoder().decode(got)).toBe("plain")
      expect(seen.map((h) => h.authorization?.split(" ")[0])).toEqual(["AWS4-HMAC-SHA256", "AWS4-HMAC-SHA256"])
      // The SSE-C headers are signed (x-amz-* headers always are).
      expect(seen[0]!.authorization).toContain("x-amz-server-side-encryption-customer-key")
    })
  )

  it.scoped("S3 error codes: NoSuchBucket, NoSuchKey, BadDigest, SlowDown, AccessDenied", () =>
    Effect.gen(function* () {
      let code = ""
      const server = yield* fakeServer((_req, _body, res) =>
        s3Answer(res, code === "SlowDown" ? 503 : code === "AccessDenied" ? 403 : code === "BadDigest" ? 400 : 404, code)
      )
      const run = <A, E>(c: string, f: (store: ObjectStore) => Effect.Effect<A, E>) =>
        Effect.suspend(() => {
          code = c
          return Effect.flip(useStore(s3At(server.url), f))
        })
      expect((yield* run("NoSuchBucket", (s) => s.get("b", "o")))._tag).toBe("ContainerNotFound")
      expect((yield* run("NoSuchKey", (s) => s.get("b", "o")))._tag).toBe("ObjectNotFound")
      expect((yield* run("NoSuchBucket", (s) => s.put("b", "o", new Uint8Array(1))))._tag).toBe("ContainerNotFound")
      expect((yield* run("BadDigest", (s) => s.put("b", "o", new Uint8Array(1))))._tag).toBe("ChecksumMismatch")
      expect((yield* run("SlowDown", (s) => s.list("b", "")))._tag).toBe("StoreUnavailable")
      const denied = yield* run("AccessDenied", (s) => s.list("b", ""))
      expect(denied._tag).toBe("StoreAuthError")
      expect(denied.message).not.toContain("s3-secret-value")
    })
  )

  it.scoped("a wrong ETag without SSE-C is a ChecksumMismatch", () =>
    Effect.gen(function* () {
      const server = yield* fakeServer((_req, _body, res) => res.writeHead(200, { etag: '"00000000000000000000000000000000"' }).end())
      const error = yield* Effect.flip(useStore(s3At(server.url), (s) => s.put("b", "o", new Uint8Array([9]))))
      expect(error._tag).toBe("ChecksumMismatch")
    })
  )

  it.scoped("a region other than us-east-1 goes into the signature and the CreateBucket body", () =>
    Effect.gen(function* () {
      const seen: Array<{ method: string; auth: string; body: string }> = []
      const server = yield* fakeServer((req, body, res) => {
        seen.push({ method: req.method!, auth: String(req.headers.authorization), body: body.toString() })
        res.writeHead(req.method === "HEAD" ? 404 : 200).end()
      })
      yield* useStore(s3At(server.url, { region: "eu-west-3" }), (s) => s.ensureContainer("bucket"))
      expect(seen.map((s) => s.method)).toEqual(["HEAD", "PUT"])
      expect(seen[1]!.auth).toContain("/eu-west-3/s3/aws4_request")
      expect(seen[1]!.body).toContain("<LocationConstraint>eu-west-3</LocationConstraint>")
    })
  )
})
