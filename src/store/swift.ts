/**
 * OpenStack Swift ObjectStore: what Cinder's SwiftBackupDriver does, over
 * the @effect/platform HttpClient.
 *
 * Authentication, three ways:
 *   - `v1`: auth v1.0 (tempauth, swauth): GET <authUrl> with X-Auth-User /
 *     X-Auth-Key; the answer carries X-Auth-Token and X-Storage-Url;
 *   - `keystone`: Keystone v3 password auth: POST <authUrl>/auth/tokens
 *     scoped to a project; the token is X-Subject-Token and the storage URL
 *     the `object-store` endpoint of the catalog (interface and region
 *     chosen by options);
 *   - `token`: a token obtained elsewhere plus the storage URL.
 * A token is fetched on first use and shared by all calls. When Swift
 * answers 401, the token is renewed once (one renewal for all concurrent
 * calls) and the call sent again; a second 401 is a StoreAuthError. A
 * `token` store cannot renew: its 401 is a StoreAuthError at once.
 *
 * Cinder's conventions: container `volumebackups`, prefix
 * `volume_<id>/<stamp>/az_<az>_backup_<id>`, 50 MiB objects, 32 KiB sha
 * blocks; containers are created with HEAD then PUT (X-Storage-Policy
 * optional); listings page through `marker`; every PUT sends its md5 as
 * ETag (Swift refuses a body that does not match, 422) and compares the
 * ETag Swift answers.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { Duration, Effect, Layer, Option, Redacted, SynchronizedRef } from "effect"
import { aroundEach } from "./decorators.js"
import { ChecksumMismatch, ContainerNotFound, InvalidObjectName, ObjectNotFound, StoreAuthError, StoreError, type StoreFailure } from "./errors.js"
import {
  deletingWhenAbandoned,
  encodePath,
  etagOf,
  failureForStatus,
  fieldsOf,
  joinUrl,
  md5,
  readBody,
  redactingSecrets,
  send,
  smallText,
  type Where
} from "./http.js"
import { make, ObjectStore, swiftStylePrefix, type ListedObject } from "./ObjectStore.js"

/** How the Swift store authenticates: Keystone v3, auth v1.0, or a token with its storage URL. */
export type SwiftAuth =
  | {
      readonly type: "v1"
      /** e.g. http://127.0.0.1:8080/auth/v1.0 */
      readonly authUrl: string
      /** `account:user` for tempauth */
      readonly user: string
      readonly key: Redacted.Redacted<string>
    }
  | {
      readonly type: "keystone"
      /** Keystone's URL, with or without the trailing /v3 */
      readonly authUrl: string
      readonly username?: string
      readonly userId?: string
      readonly password: Redacted.Redacted<string>
      /** default "Default" (when neither name nor id is given) */
      readonly userDomainName?: string
      readonly userDomainId?: string
      readonly projectName?: string
      readonly projectId?: string
      readonly projectDomainName?: string
      readonly projectDomainId?: string
      /** the catalog endpoint's region; any when unset */
      readonly region?: string
      /** the catalog endpoint's interface (default "public") */
      readonly interface?: "public" | "internal" | "admin"
    }
  | {
      readonly type: "token"
      /** e.g. https://swift.example.com/v1/AUTH_<project> */
      readonly storageUrl: string
      readonly token: Redacted.Redacted<string>
    }

/** Settings of the Swift store (Cinder's SwiftBackupDriver). */
export interface SwiftStoreOptions {
  readonly auth: SwiftAuth
  /** backup_swift_container (default "volumebackups") */
  readonly container?: string
  /** false: a missing container is ContainerNotFound instead of being created */
  readonly createContainers?: boolean
  /** backup_swift_create_storage_policy: X-Storage-Policy of created containers */
  readonly storagePolicy?: string
  /** backup_swift_object_size (default 52428800) */
  readonly chunkSize?: number
  /** backup_swift_block_size (default 32768) */
  readonly shaBlockSize?: number
  /** storage_availability_zone, for the prefix when the record has none (default "nova") */
  readonly availabilityZone?: string
  /** per request: until the response arrives (uploads: including the body), then between body chunks (default 60 s) */
  readonly timeout?: Duration.DurationInput
  /** objects in flight for backups and restores (default 4) */
  readonly concurrency?: number
  /**
   * names asked for per listing page (default 1000): a shorter page is the
   * last, so a small listing takes one request. A cluster whose
   * container_listing_limit is lower answers 412, and the store then pages
   * by the cluster's own limit, until an empty page.
   */
  readonly listingPageSize?: number
}

interface Session {
  readonly token: Redacted.Redacted<string>
  readonly storageUrl: string
  /** epoch ms; renewed a minute before */
  readonly expiresAt?: number
}

const MAX_CONTAINER_BYTES = 256

const checkContainer = (container: string) =>
  container.includes("/")
    ? Effect.fail(new InvalidObjectName({ name: container, reason: "Swift container names cannot contain '/'" }))
    : Buffer.byteLength(container) > MAX_CONTAINER_BYTES
      ? Effect.fail(new InvalidObjectName({ name: container, reason: `is longer than ${MAX_CONTAINER_BYTES} bytes` }))
      : Effect.void

const ok = (response: HttpClientResponse.HttpClientResponse) => response.status >= 200 && response.status < 300

/** A Swift store over @effect/platform's HttpClient; it authenticates on first use and renews its token once on a 401. */
export const makeSwift = (options: SwiftStoreOptions) =>
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    const timeout = Duration.decode(options.timeout ?? Duration.seconds(60))
    const auth = options.auth

    // ---- authentication ----------------------------------------------------
    const authFailure = (where: Where, response: HttpClientResponse.HttpClientResponse, what: string) =>
      Effect.flatMap(smallText(response), (text) => {
        const detail = text.replace(/\s+/g, " ").trim()
        const reason = `${what}: HTTP ${response.status}${detail === "" ? "" : ` (${detail})`}`
        return Effect.fail(
          response.status === 401 || response.status === 403 || response.status === 404
            ? new StoreAuthError({ ...fieldsOf(where, reason), status: response.status })
            : failureForStatus(where, response.status, `${what}${detail === "" ? "" : `: ${detail}`}`)
        )
      })

    const authV1 = (where: Where, a: Extract<SwiftAuth, { type: "v1" }>) =>
      Effect.gen(function* () {
        const request = HttpClientRequest.get(a.authUrl).pipe(
          HttpClientRequest.setHeaders({ "x-auth-user": a.user, "x-auth-key": Redacted.value(a.key) })
        )
        const response = yield* send(client, where, request, timeout)
        if (!ok(response)) return yield* authFailure(where, response, `auth v1 at ${a.authUrl}`)
        yield* smallText(response)
        const token = response.headers["x-auth-token"] ?? response.headers["x-storage-token"]
        const storageUrl = response.headers["x-storage-url"]
        if (token === undefined || storageUrl === undefined) {
          return yield* new StoreError(fieldsOf(where, `auth v1 at ${a.authUrl} answered without X-Auth-Token or X-Storage-Url`))
        }
        const expires = Number(response.headers["x-auth-token-expires"])
        return {
          token: Redacted.make(token),
          storageUrl,
          ...(Number.isFinite(expires) ? { expiresAt: Date.now() + expires * 1000 } : {})
        } satisfies Session
      })

    const authKeystone = (where: Where, a: Extract<SwiftAuth, { type: "keystone" }>) =>
      Effect.gen(function* () {
        const base = a.authUrl.replace(/\/+$/, "")
        const url = `${/\/v3$/.test(base) ? base : `${base}/v3`}/auth/tokens`
        const domain = (id: string | undefined, name: string | undefined) => (id !== undefined ? { id } : { name: name ?? "Default" })
        const user =
          a.userId !== undefined
            ? { id: a.userId, password: Redacted.value(a.password) }
            : { name: a.username, domain: domain(a.userDomainId, a.userDomainName), password: Redacted.value(a.password) }
        const project =
          a.projectId !== undefined ? { id: a.projectId } : { name: a.projectName, domain: domain(a.projectDomainId, a.projectDomainName) }
        const body = { auth: { identity: { methods: ["password"], password: { user } }, scope: { project } } }
        const request = HttpClientRequest.post(url).pipe(
          HttpClientRequest.bodyUint8Array(new TextEncoder().encode(JSON.stringify(body)), "application/json")
        )
        const response = yield* send(client, where, request, timeout)
        if (!ok(response)) return yield* authFailure(where, response, `Keystone at ${url}`)
        const token = response.headers["x-subject-token"]
        const text = yield* smallTextFull(response)
        const invalid = (why: string) => new StoreError(fieldsOf(where, `Keystone at ${url}: ${why}`))
        if (token === undefined) return yield* invalid("no X-Subject-Token in the answer")
        const parsed = yield* Effect.try({ try: () => JSON.parse(text) as KeystoneToken, catch: () => invalid("the answer is not JSON") })
        const iface = a.interface ?? "public"
        const endpoint = (parsed.token?.catalog ?? [])
          .filter((service) => service.type === "object-store")
          .flatMap((service) => service.endpoints ?? [])
          .find((e) => e.interface === iface && (a.region === undefined || e.region_id === a.region || e.region === a.region))
        if (endpoint?.url === undefined) {
          const region = a.region === undefined ? "" : ` in region ${a.region}`
          return yield* invalid(`the catalog has no ${iface} object-store endpoint${region}`)
        }
        const expiresAt = Date.parse(parsed.token?.expires_at ?? "")
        return {
          token: Redacted.make(token),
          storageUrl: endpoint.url,
          ...(Number.isFinite(expiresAt) ? { expiresAt } : {})
        } satisfies Session
      })

    const authenticate = (where: Where): Effect.Effect<Session, AuthFailure> =>
      auth.type === "v1"
        ? authV1(where, auth)
        : auth.type === "keystone"
          ? authKeystone(where, auth)
          : Effect.succeed({ token: auth.token, storageUrl: auth.storageUrl })

    const sessionRef = yield* SynchronizedRef.make<Option.Option<Session>>(Option.none())
    const fresh = (session: Session) => session.expiresAt === undefined || session.expiresAt - Date.now() > 60_000
    /** The current session; one authentication for all callers that find none (or an expiring one). */
    const currentSession = (where: Where) =>
      SynchronizedRef.modifyEffect(sessionRef, (current) =>
        Option.isSome(current) && fresh(current.value)
          ? Effect.succeed([current.value, current] as const)
          : Effect.map(authenticate(where), (session) => [session, Option.some(session)] as const)
      )
    /** A new session unless another caller already replaced `stale`. */
    const renew = (where: Where, stale: Session) =>
      SynchronizedRef.modifyEffect(sessionRef, (current) =>
        Option.isSome(current) && current.value !== stale
          ? Effect.succeed([current.value, current] as const)
          : Effect.map(authenticate(where), (session) => [session, Option.some(session)] as const)
      )

    /** Sends a request built for the current session; on 401 renews once and sends again. */
    const call = (where: Where, build: (storageUrl: string) => HttpClientRequest.HttpClientRequest) =>
      Effect.gen(function* () {
        const withToken = (session: Session) =>
          HttpClientRequest.setHeader(build(session.storageUrl), "x-auth-token", Redacted.value(session.token))
        const session = yield* currentSession(where)
        const response = yield* send(client, where, withToken(session), timeout)
        if (response.status !== 401 || auth.type === "token") return response
        yield* smallText(response)
        const renewed = yield* renew(where, session)
        return yield* send(client, where, withToken(renewed), timeout)
      })

    /** Any status the caller does not handle: read a little of the body for the message. */
    const unexpected = (where: Where, response: HttpClientResponse.HttpClientResponse) =>
      Effect.flatMap(smallText(response), (text) =>
        Effect.fail(failureForStatus(where, response.status, text.replace(/\s+/g, " ").trim()))
      )

    const containerUrl = (storageUrl: string, container: string) => joinUrl(storageUrl, encodePath(container))
    const objectUrl = (storageUrl: string, container: string, object: string) =>
      joinUrl(storageUrl, `${encodePath(container)}/${encodePath(object)}`)

    const containerExists = (where: Where, container: string) =>
      Effect.gen(function* () {
        const response = yield* call(where, (url) => HttpClientRequest.head(containerUrl(url, container)))
        if (ok(response)) return yield* Effect.as(smallText(response), true)
        if (response.status === 404) return yield* Effect.as(smallText(response), false)
        return yield* unexpected(where, response)
      })

    // undefined once the cluster refused it: then its own limit decides.
    let pageSize: number | undefined = Math.max(1, Math.floor(options.listingPageSize ?? 1000))
    const listPage = (where: Where, container: string, prefix: string, marker: string): Effect.Effect<ReadonlyArray<ListedObject>, StoreFailure> =>
      Effect.gen(function* () {
        const limit = pageSize
        const query = `?format=json&prefix=${encodeURIComponent(prefix)}${marker === "" ? "" : `&marker=${encodeURIComponent(marker)}`}${
          limit === undefined ? "" : `&limit=${limit}`
        }`
        const response = yield* call(where, (url) => HttpClientRequest.get(containerUrl(url, container) + query))
        if (response.status === 412 && limit !== undefined) {
          // "Maximum limit is N": this cluster's container_listing_limit is below our page size.
          yield* smallText(response)
          pageSize = undefined
          return yield* listPage(where, container, prefix, marker)
        }
        if (response.status === 404) return yield* Effect.zipRight(smallText(response), new ContainerNotFound({ container }))
        if (response.status === 204) return []
        if (!ok(response)) return yield* unexpected(where, response)
        const body = yield* readBody(response, where, timeout)
        const page = yield* Effect.try({
          try: () => JSON.parse(Buffer.from(body).toString("utf8")) as ReadonlyArray<{ readonly name?: unknown; readonly bytes?: unknown }>,
          catch: () => new StoreError(fieldsOf(where, "the listing is not JSON"))
        })
        // A size the listing does not give (or gives wrong) is NaN: the caller says unknown.
        return page.flatMap((entry) =>
          typeof entry.name === "string" ? [{ name: entry.name, bytes: typeof entry.bytes === "number" && entry.bytes >= 0 ? entry.bytes : Number.NaN }] : []
        )
      })

    const listAll = (container: string, prefix: string) =>
      Effect.gen(function* () {
        yield* checkContainer(container)
        const where = { operation: "list", container }
        const objects: Array<ListedObject> = []
        for (;;) {
          const limit = pageSize
          const page = yield* listPage(where, container, prefix, objects.at(-1)?.name ?? "")
          if (page.length === 0) return objects
          objects.push(...page)
          // Asked for `limit` and given fewer: that was the last page (after a 412, only an empty page says so).
          if (limit !== undefined && pageSize !== undefined && page.length < limit) return objects
        }
      })

    const putObject = (container: string, object: string, bytes: Uint8Array) =>
      Effect.gen(function* () {
        yield* checkContainer(container)
        const where = { operation: "write", container, object }
        const expected = md5(bytes).toString("hex")
        const response = yield* call(where, (url) =>
          HttpClientRequest.put(objectUrl(url, container, object), { headers: { etag: expected } }).pipe(
            HttpClientRequest.bodyUint8Array(bytes, "application/octet-stream")
          )
        )
        if (response.status === 404) return yield* Effect.zipRight(smallText(response), new ContainerNotFound({ container }))
        if (response.status === 422) {
          yield* smallText(response)
          return yield* new ChecksumMismatch({ container, object, expected, actual: "refused by Swift (422: body does not match the ETag sent)" })
        }
        if (!ok(response)) return yield* unexpected(where, response)
        yield* smallText(response)
        const etag = etagOf(response)
        if (etag !== expected) return yield* new ChecksumMismatch({ container, object, expected, actual: etag === "" ? "no ETag" : etag })
      })

    const deleteObject = (container: string, object: string) =>
      Effect.gen(function* () {
        yield* checkContainer(container)
        const where = { operation: "delete", container, object }
        const response = yield* call(where, (url) => HttpClientRequest.del(objectUrl(url, container, object)))
        if (!ok(response) && response.status !== 404) return yield* unexpected(where, response)
        yield* smallText(response)
      })

    const store = make({
      kind: "swift",
      defaults: {
        chunkSize: options.chunkSize ?? 52428800,
        shaBlockSize: options.shaBlockSize ?? 32768,
        service: "cinder.backup.drivers.swift.SwiftBackupDriver",
        concurrency: options.concurrency ?? 4
      },
      containerFor: (backup) => backup.container ?? options.container ?? "volumebackups",
      objectPrefix: (backup, now) => swiftStylePrefix(backup, now, backup.availability_zone ?? options.availabilityZone ?? "nova"),
      extraMetadata: () => undefined,

      ensureContainer: (container) =>
        Effect.gen(function* () {
          yield* checkContainer(container)
          const where = { operation: "create container", container }
          if (yield* containerExists(where, container)) return
          if (options.createContainers === false) return yield* new ContainerNotFound({ container })
          const headers = options.storagePolicy === undefined ? {} : { "x-storage-policy": options.storagePolicy }
          const response = yield* call(where, (url) => HttpClientRequest.put(containerUrl(url, container), { headers }))
          if (!ok(response)) return yield* unexpected(where, response)
          yield* smallText(response)
        }),

      // Pages of up to the cluster's listing limit (10000 by default), until an empty one.
      list: (container, prefix) => Effect.map(listAll(container, prefix), (objects) => objects.map((o) => o.name)),
      listSizes: listAll,

      put: (container, object, bytes) =>
        deletingWhenAbandoned(putObject(container, object, bytes), deleteObject(container, object), timeout),
      get: (container, object) =>
        Effect.gen(function* () {
          yield* checkContainer(container)
          const where = { operation: "read", container, object }
          const response = yield* call(where, (url) => HttpClientRequest.get(objectUrl(url, container, object)))
          if (ok(response)) return yield* readBody(response, where, timeout)
          if (response.status !== 404) return yield* unexpected(where, response)
          yield* smallText(response)
          // Swift answers 404 for a missing container too.
          return yield* (yield* containerExists(where, container))
            ? Effect.fail(new ObjectNotFound({ container, object }))
            : Effect.fail(new ContainerNotFound({ container }))
        }),

      delete: deleteObject
    })
    // Secret headers stay redacted wherever @effect/platform renders a request.
    return aroundEach(store, (_operation, _container, _object, call) => redactingSecrets(call))
  })

type AuthFailure = Effect.Effect.Error<ReturnType<typeof send>> | StoreAuthError | StoreError

interface KeystoneToken {
  readonly token?: {
    readonly expires_at?: string
    readonly catalog?: ReadonlyArray<{
      readonly type?: string
      readonly endpoints?: ReadonlyArray<{ readonly interface?: string; readonly region?: string; readonly region_id?: string; readonly url?: string }>
    }>
  }
}

/** The whole (JSON) body of Keystone's answer. */
const smallTextFull = (response: HttpClientResponse.HttpClientResponse) => Effect.orElseSucceed(response.text, () => "")

/** The Swift layer; needs an HttpClient (e.g. NodeHttpClient.layerUndici from @effect/platform-node). */
export const layerSwift = (options: SwiftStoreOptions): Layer.Layer<ObjectStore, never, HttpClient.HttpClient> =>
  Layer.effect(ObjectStore, makeSwift(options))
