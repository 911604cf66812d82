/**
 * S3 ObjectStore: what Cinder's S3BackupDriver does (boto3 there), over the
 * @effect/platform HttpClient, signed with AWS Signature V4 by `aws4`.
 *
 * - Any S3 endpoint (AWS, Ceph RGW, MinIO, Swift's s3api, …) over http or
 *   https, a region, path-style (`<endpoint>/<bucket>/<key>`) or
 *   virtual-hosted (`<bucket>.<endpoint host>/<key>`) addressing.
 * - Every upload sends a known Content-Length (never `aws-chunked`, which
 *   Swift's s3api refuses), its Content-MD5 (the store refuses a body that
 *   does not match: BadDigest) and, unless `unsignedPayload`, the SHA-256 of
 *   the body in the signature. Without SSE-C the ETag answered must be the
 *   md5 too (with SSE-C, S3's ETag is not the md5; Content-MD5 still holds).
 * - SSE-C like Cinder's backup_s3_sse_customer_key/_algorithm: the key is
 *   the same raw string (32 bytes for AES256); it is sent base64-encoded
 *   with its md5 on every write and read.
 * - Buckets are created with HEAD then PUT (a LocationConstraint outside
 *   us-east-1); listings page through ListObjectsV2's continuation token.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import aws4 from "aws4"
import { Duration, Effect, Layer, Redacted } from "effect"
import { aroundEach } from "./decorators.js"
import { ChecksumMismatch, ContainerNotFound, InvalidObjectName, ObjectNotFound, StoreAuthError, StoreError } from "./errors.js"
import {
  deletingWhenAbandoned,
  encodePath,
  etagOf,
  failureForStatus,
  fieldsOf,
  md5,
  readBody,
  redactingSecrets,
  send,
  sha256Hex,
  smallText,
  type Where
} from "./http.js"
import { make, ObjectStore, swiftStylePrefix, type ListedObject } from "./ObjectStore.js"

/** Settings of the S3 store (Cinder's S3BackupDriver): endpoint, region, bucket and credentials. */
export interface S3StoreOptions {
  /** backup_s3_store_bucket (default "volumebackups") */
  readonly bucket?: string
  /** backup_s3_endpoint_url, e.g. http://127.0.0.1:8080 (default https://s3.<region>.amazonaws.com) */
  readonly endpoint?: string
  /** default "us-east-1" */
  readonly region?: string
  /** path-style addressing; default true with a custom endpoint, false on AWS */
  readonly pathStyle?: boolean
  readonly accessKeyId: string
  readonly secretAccessKey: Redacted.Redacted<string>
  /** temporary credentials (AWS_SESSION_TOKEN) */
  readonly sessionToken?: Redacted.Redacted<string>
  /** backup_s3_sse_customer_key: enables SSE-C */
  readonly sseCustomerKey?: Redacted.Redacted<string>
  /** backup_s3_sse_customer_algorithm (default "AES256") */
  readonly sseCustomerAlgorithm?: string
  /** sign `UNSIGNED-PAYLOAD` instead of the body's SHA-256 (saves a hash per object; Content-MD5 still guards the body) */
  readonly unsignedPayload?: boolean
  /** false: a missing bucket is ContainerNotFound instead of being created */
  readonly createContainers?: boolean
  /** backup_s3_object_size (default 52428800) */
  readonly chunkSize?: number
  /** backup_s3_block_size (default 32768) */
  readonly shaBlockSize?: number
  /** storage_availability_zone, for the prefix when the record has none (default "nova") */
  readonly availabilityZone?: string
  /** per request: until the response arrives (uploads: including the body), then between body chunks (default 60 s, as backup_s3_timeout) */
  readonly timeout?: Duration.DurationInput
  /** objects in flight for backups and restores (default 4) */
  readonly concurrency?: number
}

const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/** RFC 3986 encoding for query values (what SigV4 canonicalises to). */
const q = (value: string) => encodeURIComponent(value).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase())

const unescapeXml = (text: string) =>
  text.replace(/&(#x[0-9a-fA-F]+|#\d+|amp|lt|gt|quot|apos);/g, (_, entity: string) =>
    entity === "amp" ? "&" : entity === "lt" ? "<" : entity === "gt" ? ">" : entity === "quot" ? '"' : entity === "apos" ? "'"
    : String.fromCodePoint(entity.startsWith("#x") ? parseInt(entity.slice(2), 16) : parseInt(entity.slice(1), 10))
  )

/** The text of every `<tag>…</tag>` in a flat S3 XML document (ListBucketResult, Error). */
export const xmlValues = (xml: string, tag: string): Array<string> =>
  [...xml.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, "g"))].map((m) => unescapeXml(m[1]!))

const checkBucket = (bucket: string) =>
  bucket.includes("/")
    ? Effect.fail(new InvalidObjectName({ name: bucket, reason: "S3 bucket names cannot contain '/'" }))
    : Effect.void

const ok = (response: HttpClientResponse.HttpClientResponse) => response.status >= 200 && response.status < 300

/** S3 error codes that are worth another try although their status is 4xx. */
const TRANSIENT_CODES = new Set(["RequestTimeout", "SlowDown", "InternalError", "ServiceUnavailable", "OperationAborted"])

/** An S3 store over @effect/platform's HttpClient, signing requests with AWS Signature Version 4. */
export const makeS3 = (options: S3StoreOptions) =>
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    const timeout = Duration.decode(options.timeout ?? Duration.seconds(60))
    const region = options.region ?? "us-east-1"
    const endpoint = new URL(options.endpoint ?? `https://s3.${region}.amazonaws.com`)
    const pathStyle = options.pathStyle ?? options.endpoint !== undefined
    const basePath = endpoint.pathname.replace(/\/+$/, "")
    const credentials = () => ({
      accessKeyId: options.accessKeyId,
      secretAccessKey: Redacted.value(options.secretAccessKey),
      ...(options.sessionToken === undefined ? {} : { sessionToken: Redacted.value(options.sessionToken) })
    })
    const sse: Record<string, string> =
      options.sseCustomerKey === undefined
        ? {}
        : (() => {
            const key = Buffer.from(Redacted.value(options.sseCustomerKey), "utf8")
            return {
              "x-amz-server-side-encryption-customer-algorithm": options.sseCustomerAlgorithm ?? "AES256",
              "x-amz-server-side-encryption-customer-key": key.toString("base64"),
              "x-amz-server-side-encryption-customer-key-md5": md5(key).toString("base64")
            }
          })()

    /** A signed request to a bucket (key undefined) or an object; `query` already RFC 3986 encoded. */
    const request = (
      method: "GET" | "HEAD" | "PUT" | "DELETE",
      bucket: string,
      key: string | undefined,
      init: { readonly query?: string; readonly headers?: Record<string, string>; readonly body?: Uint8Array } = {}
    ) => {
      const host = pathStyle ? endpoint.host : `${bucket}.${endpoint.host}`
      const objectPath = key === undefined ? "" : encodePath(key)
      const path =
        (pathStyle ? `${basePath}/${encodePath(bucket)}${key === undefined ? "" : `/${objectPath}`}` : `${basePath}/${objectPath}`) +
        (init.query === undefined ? "" : `?${init.query}`)
      const payloadHash =
        init.body === undefined ? EMPTY_SHA256 : options.unsignedPayload === true ? "UNSIGNED-PAYLOAD" : sha256Hex(init.body)
      const signed = aws4.sign(
        {
          host,
          method,
          path,
          service: "s3",
          region,
          headers: { ...init.headers, "x-amz-content-sha256": payloadHash }
        },
        credentials()
      )
      const headers: Record<string, string> = {}
      for (const [name, value] of Object.entries(signed.headers ?? {})) {
        // undici sends Host from the URL (the same value that was signed).
        if (name.toLowerCase() !== "host" && value !== undefined) headers[name.toLowerCase()] = String(value)
      }
      const url = `${endpoint.protocol}//${host}${signed.path ?? path}`
      const base = HttpClientRequest.make(method)(url, { headers })
      return init.body === undefined ? base : HttpClientRequest.bodyUint8Array(base, init.body, headers["content-type"] ?? "application/octet-stream")
    }

    /** S3's error document: its Code and Message (both "" without a body). */
    const errorOf = (response: HttpClientResponse.HttpClientResponse) =>
      Effect.map(smallText(response), (xml) => ({
        code: xmlValues(xml, "Code")[0] ?? "",
        message: xmlValues(xml, "Message")[0] ?? ""
      }))

    const failWith = (where: Where, status: number, code: string, message: string) => {
      const detail = [code, message].filter((s) => s !== "").join(": ")
      return Effect.fail(
        code === "SignatureDoesNotMatch" || code === "InvalidAccessKeyId" || code === "AccessDenied"
          ? new StoreAuthError({ ...fieldsOf(where, `HTTP ${status} (${detail})`), status })
          : failureForStatus(where, status, detail, TRANSIENT_CODES.has(code))
      )
    }
    const fail = (where: Where, response: HttpClientResponse.HttpClientResponse) =>
      Effect.flatMap(errorOf(response), ({ code, message }) => failWith(where, response.status, code, message))

    const exec = (where: Where, req: HttpClientRequest.HttpClientRequest) => send(client, where, req, timeout)

    const bucketExists = (where: Where, bucket: string) =>
      Effect.gen(function* () {
        const response = yield* exec(where, request("HEAD", bucket, undefined))
        yield* smallText(response)
        if (ok(response)) return true
        if (response.status === 404) return false
        if (response.status === 301) {
          const actual = response.headers["x-amz-bucket-region"] ?? "another region"
          return yield* new StoreError(fieldsOf(where, `bucket ${bucket} is in ${actual}, not ${region}`))
        }
        // A HEAD answer has no body, so no S3 error code: ask again with a GET, whose error document says
        // what is wrong (InvalidBucketName, SignatureDoesNotMatch, AccessDenied, ...).
        const explained = yield* exec(where, request("GET", bucket, undefined, { query: "location=" }))
        if (!ok(explained) && explained.status !== 404) {
          const { code, message } = yield* errorOf(explained)
          if (code !== "") return yield* failWith(where, explained.status, code, message)
        } else yield* smallText(explained)
        return yield* Effect.fail(
          failureForStatus(where, response.status, response.status === 403 ? "the bucket exists but these credentials may not use it" : "")
        )
      })

    const putObject = (bucket: string, key: string, bytes: Uint8Array) =>
      Effect.gen(function* () {
        yield* checkBucket(bucket)
        const where = { operation: "write", container: bucket, object: key }
        const digest = md5(bytes)
        const expected = digest.toString("hex")
        const response = yield* exec(
          where,
          request("PUT", bucket, key, {
            body: bytes,
            headers: { "content-type": "application/octet-stream", "content-md5": digest.toString("base64"), ...sse }
          })
        )
        if (!ok(response)) {
          const { code } = yield* errorOf(response)
          if (code === "BadDigest" || code === "InvalidDigest") {
            return yield* new ChecksumMismatch({ container: bucket, object: key, expected, actual: `refused by the store (${code})` })
          }
          if (code === "NoSuchBucket") return yield* new ContainerNotFound({ container: bucket })
          return yield* fail(where, response)
        }
        yield* smallText(response)
        const etag = etagOf(response)
        if (options.sseCustomerKey === undefined && etag !== expected) {
          return yield* new ChecksumMismatch({ container: bucket, object: key, expected, actual: etag === "" ? "no ETag" : etag })
        }
      })

    const deleteObject = (bucket: string, key: string) =>
      Effect.gen(function* () {
        yield* checkBucket(bucket)
        const where = { operation: "delete", container: bucket, object: key }
        const response = yield* exec(where, request("DELETE", bucket, key))
        if (!ok(response) && response.status !== 404) return yield* fail(where, response)
        yield* smallText(response)
      })

    // ListObjectsV2 with url-encoded keys, page after page (1000 keys each on AWS and s3api).
    const listAll = (bucket: string, prefix: string) =>
      Effect.gen(function* () {
        yield* checkBucket(bucket)
        const where = { operation: "list", container: bucket }
        const objects: Array<ListedObject> = []
        let token: string | undefined
        for (;;) {
          const query = `list-type=2&encoding-type=url&prefix=${q(prefix)}${token === undefined ? "" : `&continuation-token=${q(token)}`}`
          const response = yield* exec(where, request("GET", bucket, undefined, { query }))
          if (response.status === 404) {
            const { code } = yield* errorOf(response)
            return yield* code === "NoSuchKey" ? Effect.succeed(objects) : Effect.fail(new ContainerNotFound({ container: bucket }))
          }
          if (!ok(response)) return yield* fail(where, response)
          const xml = Buffer.from(yield* readBody(response, where, timeout)).toString("utf8")
          // Each <Contents> holds one key and its <Size>; a size missing or malformed is NaN (unknown).
          for (const [, entry] of xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
            const key = xmlValues(entry!, "Key")[0]
            const size = Number(xmlValues(entry!, "Size")[0] ?? Number.NaN)
            if (key !== undefined) objects.push({ name: decodeURIComponent(key.replace(/\+/g, " ")), bytes: Number.isSafeInteger(size) && size >= 0 ? size : Number.NaN })
          }
          token = xmlValues(xml, "NextContinuationToken")[0]
          if (xmlValues(xml, "IsTruncated")[0] !== "true" || token === undefined) return objects
        }
      })

    const store = make({
      kind: "s3",
      defaults: {
        chunkSize: options.chunkSize ?? 52428800,
        shaBlockSize: options.shaBlockSize ?? 32768,
        service: "cinder.backup.drivers.s3.S3BackupDriver",
        concurrency: options.concurrency ?? 4
      },
      containerFor: (backup) => backup.container ?? options.bucket ?? "volumebackups",
      objectPrefix: (backup, now) => swiftStylePrefix(backup, now, backup.availability_zone ?? options.availabilityZone ?? "nova"),
      extraMetadata: () => undefined,

      ensureContainer: (bucket) =>
        Effect.gen(function* () {
          yield* checkBucket(bucket)
          const where = { operation: "create bucket", container: bucket }
          if (yield* bucketExists(where, bucket)) return
          if (options.createContainers === false) return yield* new ContainerNotFound({ container: bucket })
          const body =
            region === "us-east-1"
              ? undefined
              : new TextEncoder().encode(
                  `<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>${region}</LocationConstraint></CreateBucketConfiguration>`
                )
          const response = yield* exec(
            where,
            request("PUT", bucket, undefined, body === undefined ? {} : { body, headers: { "content-type": "application/xml" } })
          )
          if (ok(response)) return yield* smallText(response)
          const { code } = yield* errorOf(response)
          if (code === "BucketAlreadyOwnedByYou") return
          return yield* fail(where, response)
        }),

      list: (bucket, prefix) => Effect.map(listAll(bucket, prefix), (objects) => objects.map((o) => o.name)),
      listSizes: (bucket, prefix) => listAll(bucket, prefix),
      put: (bucket, key, bytes) => deletingWhenAbandoned(putObject(bucket, key, bytes), deleteObject(bucket, key), timeout),
      get: (bucket, key) =>
        Effect.gen(function* () {
          yield* checkBucket(bucket)
          const where = { operation: "read", container: bucket, object: key }
          const response = yield* exec(where, request("GET", bucket, key, { headers: sse }))
          if (ok(response)) return yield* readBody(response, where, timeout)
          if (response.status !== 404) return yield* fail(where, response)
          const { code } = yield* errorOf(response)
          return yield* code === "NoSuchBucket"
            ? Effect.fail(new ContainerNotFound({ container: bucket }))
            : Effect.fail(new ObjectNotFound({ container: bucket, object: key }))
        }),

      delete: deleteObject
    })
    // Secret headers stay redacted wherever @effect/platform renders a request.
    return aroundEach(store, (_operation, _container, _object, call) => redactingSecrets(call))
  })
/** The S3 layer; needs an HttpClient (e.g. NodeHttpClient.layerUndici from @effect/platform-node). */
export const layerS3 = (options: S3StoreOptions): Layer.Layer<ObjectStore, never, HttpClient.HttpClient> =>
  Layer.effect(ObjectStore, makeS3(options))
