/**
 * What the Swift and S3 layers share: sending a request through the
 * @effect/platform HttpClient with a timeout, classifying every outcome into
 * the store errors (404 is left to the caller, which knows whether a
 * container or an object is missing), reading a body into one buffer,
 * md5/ETag checks, and keeping secret headers out of spans and logs.
 *
 *   401, 403                       -> StoreAuthError   (permanent)
 *   5xx, 408, 429, timeouts,
 *   connection errors, short body  -> StoreUnavailable (transient: withRetry retries it)
 *   a refused TLS certificate      -> StoreError       (permanent: the same certificate comes back)
 *   anything else                  -> StoreError       (permanent)
 */
import * as Headers from "@effect/platform/Headers"
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { Cause, Duration, Effect, Exit, Fiber, Option, Stream } from "effect"
import { createHash } from "node:crypto"
import { StoreAuthError, StoreError, StoreUnavailable } from "./errors.js"
import { certificateProblem } from "./certificates.js"

/** Which store call a request belongs to: named in every error. */
export interface Where {
  readonly operation: string
  readonly container: string
  readonly object?: string
}

export const fieldsOf = (where: Where, reason: string) => ({
  operation: where.operation,
  container: where.container,
  reason,
  ...(where.object === undefined ? {} : { object: where.object })
})

/** Headers that carry secrets; added to the names @effect/platform redacts in spans and inspected requests. */
export const SECRET_HEADERS: ReadonlyArray<string> = [
  "x-auth-key",
  "x-auth-token",
  "x-storage-token",
  "x-storage-pass",
  "x-subject-token",
  "x-service-token",
  "x-amz-security-token",
  "x-amz-server-side-encryption-customer-key"
]

/** Runs `effect` with the secret headers redacted wherever @effect/platform renders headers. */
export const redactingSecrets = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.locallyWith(effect, Headers.currentRedactedNames, (names) => [...names, ...SECRET_HEADERS])

export type HttpFailure = StoreAuthError | StoreUnavailable | StoreError

/** The error for an HTTP status the caller did not expect (not 404: callers map that themselves). */
export const failureForStatus = (where: Where, status: number, detail = "", transient = false): HttpFailure => {
  const reason = `HTTP ${status}${detail === "" ? "" : ` (${detail})`}`
  if (status === 401 || status === 403) return new StoreAuthError({ ...fieldsOf(where, reason), status })
  if (transient || status >= 500 || status === 408 || status === 429) return new StoreUnavailable(fieldsOf(where, reason))
  return new StoreError(fieldsOf(where, reason))
}

/** The innermost useful text of a transport error: errno code and message (no headers, no bodies). */
const describeCause = (cause: unknown): string => {
  const parts: Array<string> = []
  let current: unknown = cause
  for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code
    const text = typeof code === "string" && !current.message.includes(code) ? `${code}: ${current.message}` : current.message
    if (text !== "" && !parts.includes(text)) parts.push(text)
    current = (current as { cause?: unknown }).cause
  }
  return parts.length === 0 ? String(cause) : parts.join(": ")
}

/** Connection refused/reset, a broken body stream -> transient; a malformed request -> permanent. */
export const failureForTransport =
  (where: Where) =>
  (error: HttpClientError.HttpClientError): StoreUnavailable | StoreError => {
    const certificate = certificateProblem(error.cause)
    if (certificate !== undefined) {
      return new StoreError(
        fieldsOf(where, `TLS certificate refused (${certificate}); give the CA with ca-file=… in the store URL, SWIFT_CA_FILE or AWS_CA_BUNDLE`)
      )
    }
    const reason = `${error.reason} error: ${describeCause(error.cause)}`
    const transient =
      (error._tag === "RequestError" && error.reason === "Transport") ||
      (error._tag === "ResponseError" && error.reason === "Decode")
    return transient ? new StoreUnavailable(fieldsOf(where, reason)) : new StoreError(fieldsOf(where, reason))
  }

/**
 * Sends a request; fails with StoreUnavailable when no response (status and
 * headers) arrived within `timeout`, which for an upload includes sending
 * its body. Interruption or the timeout aborts the request.
 */
export const send = (
  client: HttpClient.HttpClient,
  where: Where,
  request: HttpClientRequest.HttpClientRequest,
  timeout: Duration.Duration
): Effect.Effect<HttpClientResponse.HttpClientResponse, StoreUnavailable | StoreError> =>
  inOwnFiber(
    client.execute(request).pipe(
      Effect.mapError(failureForTransport(where)),
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () => new StoreUnavailable(fieldsOf(where, `no response within ${Duration.format(timeout)}`))
      })
    )
  )

/**
 * Runs `effect` in a fiber of its own where it is interruptible, so the
 * timeouts inside it hold wherever it is called from. Effect's timeout
 * interrupts what it limits and waits for that, which never happens in an
 * uninterruptible region (a finalizer, a compensating delete): a DELETE
 * there waited out a whole outage of the link. The caller's own
 * interruption still reaches the work where the caller is interruptible.
 */
export const inOwnFiber = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.flatMap(Effect.forkDaemon(Effect.interruptible(effect)), (work) =>
      restore(Fiber.join(work)).pipe(Effect.onInterrupt(() => Fiber.interrupt(work)))
    )
  )

/** How long an error or acknowledgement body (small, behind the headers already in) may take. */
const SMALL_BODY_TIMEOUT = Duration.seconds(30)

/** Reads (and so releases) a small body, e.g. of an error response; "" when that fails. */
export const smallText = (response: HttpClientResponse.HttpClientResponse): Effect.Effect<string> =>
  inOwnFiber(response.text.pipe(Effect.timeout(SMALL_BODY_TIMEOUT))).pipe(
    Effect.map((text) => (text.length > 300 ? text.slice(0, 300) + "…" : text)),
    Effect.orElseSucceed(() => "")
  )

/**
 * Streams a body into one buffer: preallocated from Content-Length when the
 * store sends it (so an object costs its size once), else the chunks joined
 * at the end. Fails with StoreUnavailable when the body stalls for
 * `idleTimeout`, breaks off, or is shorter or longer than announced.
 */
export const readBody = (
  response: HttpClientResponse.HttpClientResponse,
  where: Where,
  idleTimeout: Duration.Duration
): Effect.Effect<Uint8Array, StoreUnavailable | StoreError> =>
  inOwnFiber(Effect.suspend(() => {
    const stream = response.stream.pipe(
      Stream.mapError(failureForTransport(where)),
      Stream.timeoutFail(
        () => new StoreUnavailable(fieldsOf(where, `body stalled for ${Duration.format(idleTimeout)}`)),
        idleTimeout
      )
    )
    const header = response.headers["content-length"]
    const declared = header === undefined ? NaN : Number(header)
    if (Number.isSafeInteger(declared) && declared >= 0) {
      const buffer = new Uint8Array(declared)
      let offset = 0
      const short = (what: string) => new StoreUnavailable(fieldsOf(where, `${what}: ${offset} of ${declared} bytes`))
      return stream.pipe(
        Stream.runForEach((chunk) =>
          offset + chunk.length > declared
            ? Effect.fail(short("body longer than its Content-Length"))
            : Effect.sync(() => {
                buffer.set(chunk, offset)
                offset += chunk.length
              })
        ),
        Effect.filterOrFail(
          () => offset === declared,
          () => short("body ended early")
        ),
        Effect.as(buffer)
      )
    }
    const chunks: Array<Uint8Array> = []
    return stream.pipe(
      Stream.runForEach((chunk) => Effect.sync(() => void chunks.push(chunk))),
      Effect.map(() => new Uint8Array(Buffer.concat(chunks)))
    )
  }))

export const md5 = (bytes: Uint8Array): Buffer => createHash("md5").update(bytes).digest()
export const sha256Hex = (bytes: Uint8Array | string): string => createHash("sha256").update(bytes).digest("hex")

/** An ETag header without quotes, lower case; "" when absent. */
export const etagOf = (response: HttpClientResponse.HttpClientResponse): string =>
  (response.headers["etag"] ?? "").replace(/^W\//, "").replace(/"/g, "").toLowerCase()

/** Percent-encodes each '/'-separated segment (RFC 3986 unreserved characters stay as they are). */
export const encodePath = (name: string): string =>
  name
    .split("/")
    .map((segment) => encodeURIComponent(segment).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase()))
    .join("/")

/** Joins a base URL (no trailing slash needed) and an already encoded path. */
export const joinUrl = (base: string, path: string): string => `${base.replace(/\/+$/, "")}/${path}`

/**
 * An upload we give up on may still complete on the server once its body
 * is in. On interruption, let the request finish (it is bounded by its own
 * timeout) and, unless the store answered with a definite refusal, delete
 * the object: a DELETE sent after the PUT's answer is ordered after it, so
 * nothing is left behind (the ObjectStore promise for interrupted writes).
 * After a transient failure (no answer, connection lost) the PUT may have
 * landed too: delete it as well (a retry writes it again).
 */
export const deletingWhenAbandoned = <E extends { readonly _tag: string }>(
  put: Effect.Effect<void, E>,
  remove: Effect.Effect<void, unknown>,
  timeout: Duration.Duration
): Effect.Effect<void, E> => {
  // Both waits below run where the caller is uninterruptible: inOwnFiber lets their timeouts hold.
  const compensate = Effect.ignore(inOwnFiber(Effect.timeout(remove, timeout)))
  // Written, interrupted, or no definite answer: the object may be there.
  const mayHaveLanded = (exit: Exit.Exit<void, E>) =>
    Exit.match(exit, {
      onSuccess: () => true,
      onFailure: (cause) =>
        Option.match(Cause.failureOption(cause), { onNone: () => true, onSome: (error) => error._tag === "StoreUnavailable" })
    })
  // A daemon: interrupting the caller would interrupt a child fiber at once, aborting the
  // request without knowing whether it landed; this one is awaited (or interrupted) below.
  return Effect.uninterruptibleMask((restore) =>
    Effect.flatMap(Effect.forkDaemon(restore(put)), (upload) =>
      restore(Fiber.join(upload)).pipe(
        Effect.onInterrupt(() =>
          inOwnFiber(Effect.timeout(Fiber.await(upload), timeout)).pipe(
            Effect.flatMap((exit) => (mayHaveLanded(exit) ? compensate : Effect.void)),
            Effect.catchAll(() => Effect.zipRight(Fiber.interrupt(upload), compensate))
          )
        ),
        Effect.tapError((error) => (error._tag === "StoreUnavailable" ? compensate : Effect.void))
      )
    )
  )
}
