/**
 * Store errors, classified the way restic's backend does it: "not there"
 * (`ObjectNotFound`, `ContainerNotFound`), "try again" (`StoreUnavailable`,
 * the only one a retry decorator may retry) and "permanent" (`StoreError`,
 * `InvalidObjectName`, `StoreAuthError`, `ChecksumMismatch`).
 */
import { Data } from "effect"

/** The object does not exist in its container. */
export class ObjectNotFound extends Data.TaggedError("ObjectNotFound")<{
  readonly container: string
  readonly object: string
}> {
  override get message() {
    return `object ${this.object} not found in container ${this.container}`
  }
}

/** The container does not exist (and the store may not create it). */
export class ContainerNotFound extends Data.TaggedError("ContainerNotFound")<{
  readonly container: string
}> {
  override get message() {
    return `container ${this.container} does not exist (and creating it is not allowed)`
  }
}

/** A container or object name the shared checks (or the backend) refuse. */
export class InvalidObjectName extends Data.TaggedError("InvalidObjectName")<{
  readonly name: string
  readonly reason: string
}> {
  override get message() {
    return `invalid container or object name ${JSON.stringify(this.name)}: ${this.reason}`
  }
}

/** A transient failure: the same call may succeed later. */
export class StoreUnavailable extends Data.TaggedError("StoreUnavailable")<{
  readonly operation: string
  readonly container: string
  readonly object?: string
  readonly reason: string
}> {
  override get message() {
    const where = this.object === undefined ? this.container : `${this.container}/${this.object}`
    return `store unavailable during ${this.operation} of ${where}: ${this.reason}`
  }
}

/** A permanent failure: retrying will not help. */
export class StoreError extends Data.TaggedError("StoreError")<{
  readonly operation: string
  readonly container: string
  readonly object?: string
  readonly reason: string
}> {
  override get message() {
    const where = this.object === undefined ? this.container : `${this.container}/${this.object}`
    return `store ${this.operation} of ${where} failed: ${this.reason}`
  }
}


/**
 * The store refused the credentials (HTTP 401/403, or the auth service said
 * no). Permanent: retrying with the same credentials will not help. An
 * expired Swift token is renewed once before this is reported.
 */
export class StoreAuthError extends Data.TaggedError("StoreAuthError")<{
  readonly operation: string
  readonly container?: string
  readonly object?: string
  /** the HTTP status, when there was one */
  readonly status?: number
  readonly reason: string
}> {
  override get message() {
    const where =
      this.container === undefined ? "" : ` of ${this.object === undefined ? this.container : `${this.container}/${this.object}`}`
    return `store authentication failed during ${this.operation}${where}: ${this.reason}`
  }
}

/**
 * A written object's checksum, as the store reports it (Swift's and S3's
 * ETag, or the store's check of Content-MD5), is not the md5 of the bytes
 * sent. Permanent, like Cinder's InvalidBackup for the same case.
 */
export class ChecksumMismatch extends Data.TaggedError("ChecksumMismatch")<{
  readonly container: string
  readonly object: string
  /** hex md5 of the bytes sent */
  readonly expected: string
  /** what the store answered (an ETag, or its error code) */
  readonly actual: string
}> {
  override get message() {
    return `store checksum of ${this.container}/${this.object} is ${this.actual}, expected md5 ${this.expected}`
  }
}

/** Every failure of a store operation other than a missing object. */
export type StoreFailure =
  | ContainerNotFound
  | InvalidObjectName
  | StoreUnavailable
  | StoreError
  | StoreAuthError
  | ChecksumMismatch

/** True for failures worth another try: StoreUnavailable (unreachable, throttled, timed out, 5xx). */
export const isTransient = (error: { readonly _tag: string }): boolean => error._tag === "StoreUnavailable"
