/**
 * Decorators that wrap any ObjectStore, after restic's backend package:
 * retry (transient errors only), a concurrency limit, and tracing. Each takes
 * a store and returns one; the `layer*` forms wrap the ObjectStore in context.
 */
import { Duration, Effect, Layer, Schedule } from "effect"
import { isTransient } from "./errors.js"
import { ObjectStore } from "./ObjectStore.js"

export interface RetryPolicy {
  /** retries after the first attempt (default 5) */
  readonly attempts?: number
  /** first delay; doubles each time, with jitter (default 200 ms) */
  readonly baseDelay?: Duration.DurationInput
  /** longest single delay before jitter (default 10 s; jitter may add up to 20 %) */
  readonly maxDelay?: Duration.DurationInput
  /** give up once this much time has passed since the first attempt (default 2 min) */
  readonly maxElapsed?: Duration.DurationInput
}

/** The Schedule behind a policy: exponential backoff with jitter, bounded in count and time. */
export const retrySchedule = (policy: RetryPolicy = {}) => {
  const maxDelay = Duration.decode(policy.maxDelay ?? Duration.seconds(10))
  const backoff = Schedule.modifyDelay(
    Schedule.exponential(policy.baseDelay ?? Duration.millis(200)),
    (_, delay) => Duration.min(delay, maxDelay)
  )
  return Schedule.jittered(backoff).pipe(
    Schedule.intersect(Schedule.recurs(policy.attempts ?? 5)),
    Schedule.upTo(policy.maxElapsed ?? Duration.minutes(2))
  )
}

/**
 * Retries transient failures (`StoreUnavailable`) and nothing else. Every
 * ObjectStore operation is idempotent (a put replaces the whole object, a
 * delete of a missing object succeeds), so all of them may be retried.
 */
export const withRetry = (store: ObjectStore, policy: RetryPolicy = {}): ObjectStore => {
  const schedule = retrySchedule(policy)
  const retry = <A, E extends { readonly _tag: string }, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.retry(effect, { schedule, while: isTransient })
  return {
    ...store,
    ensureContainer: (container) => retry(store.ensureContainer(container)),
    list: (container, prefix) => retry(store.list(container, prefix)),
    put: (container, object, bytes, extra) => retry(store.put(container, object, bytes, extra)),
    get: (container, object, extra) => retry(store.get(container, object, extra)),
    delete: (container, object) => retry(store.delete(container, object))
  }
}

/** At most `permits` store calls at once, shared by everything using this store. */
export const withConcurrencyLimit = (store: ObjectStore, permits: number): Effect.Effect<ObjectStore> =>
  Effect.map(Effect.makeSemaphore(permits), (semaphore) => {
    const limit = semaphore.withPermits(1)
    return {
      ...store,
      ensureContainer: (container) => limit(store.ensureContainer(container)),
      list: (container, prefix) => limit(store.list(container, prefix)),
      put: (container, object, bytes, extra) => limit(store.put(container, object, bytes, extra)),
      get: (container, object, extra) => limit(store.get(container, object, extra)),
      delete: (container, object) => limit(store.delete(container, object))
    }
  })

/** A span per store call, named by operation, with container and object as attributes. */
export const withTracing = (store: ObjectStore): ObjectStore => {
  const span = (operation: string, container: string, object?: string) =>
    Effect.withSpan(`ObjectStore.${operation}`, {
      attributes: { "store.kind": store.kind, container, ...(object === undefined ? {} : { object }) }
    })
  return {
    ...store,
    ensureContainer: (container) => span("ensureContainer", container)(store.ensureContainer(container)),
    list: (container, prefix) => span("list", container, prefix)(store.list(container, prefix)),
    put: (container, object, bytes, extra) => span("put", container, object)(store.put(container, object, bytes, extra)),
    get: (container, object, extra) => span("get", container, object)(store.get(container, object, extra)),
    delete: (container, object) => span("delete", container, object)(store.delete(container, object))
  }
}

/** Wraps the ObjectStore already in context with `wrap`. */
export const decorate = (wrap: (store: ObjectStore) => ObjectStore | Effect.Effect<ObjectStore>) =>
  Layer.effect(
    ObjectStore,
    Effect.flatMap(ObjectStore, (store) => {
      const wrapped = wrap(store)
      return Effect.isEffect(wrapped) ? wrapped : Effect.succeed(wrapped)
    })
  )

export const layerRetry = (policy: RetryPolicy = {}) => decorate((store) => withRetry(store, policy))
export const layerConcurrencyLimit = (permits: number) => decorate((store) => withConcurrencyLimit(store, permits))
export const layerTracing = decorate(withTracing)
