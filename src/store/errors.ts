/**
 * Store errors, classified the way restic's backend does it: "not there"
 * (`ObjectNotFound`, `ContainerNotFound`), "try again" (`StoreUnavailable`,
 * the only one a retry decorator may retry) and "permanent" (`StoreError`,
 * `InvalidObjectName`).
 */
import { Data } from "effect"

export class ObjectNotFound extends Data.TaggedError("ObjectNotFound")<{
  readonly container: string
  readonly object: string
}> {
  override get message() {
    return `object ${this.object} not found in container ${this.container}`
  }
}

export class ContainerNotFound extends Data.TaggedError("ContainerNotFound")<{
  readonly container: string
}> {
  override get message() {
    return `container ${this.container} does not exist (and creating it is not allowed)`
  }
}

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

export type StoreFailure = ContainerNotFound | InvalidObjectName | StoreUnavailable | StoreError

export const isTransient = (error: { readonly _tag: string }): boolean => error._tag === "StoreUnavailable"
