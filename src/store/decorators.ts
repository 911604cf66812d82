/**
 * Decorators that wrap any ObjectStore, after restic's backend package:
 * retry (transient errors only), a concurrency limit, and tracing. Each takes
 * a store and returns one; the `layer*` forms wrap the ObjectStore in context.
 */
import { Duration, Effect, Either, Layer, Schedule } from "effect"
import { isTransient } from "./errors.js"
import { ObjectStore, withoutLocalPaths } from "./ObjectStore.js"

/** How long one call's transient failures are retried when no budget is given: an outage of ~half a minute passes. */
export const DEFAULT_RETRY_BUDGET = Duration.seconds(30)

/** How transient store failures are retried: a time budget, backoff, and optionally a count. */
export interface RetryPolicy {
  /** at most this many retries after the first attempt (default: no count, only the time budget) */
  readonly attempts?: number
  /** first delay; doubles each time, with jitter (default 200 ms) */
  readonly baseDelay?: Duration.DurationInput
  /** longest single delay before jitter (default 5 s; jitter may add up to 20 %) */
  readonly maxDelay?: Duration.DurationInput
  /**
   * the time budget: no retry starts later than this after the call's first
   * failure, and the last delay is shortened to end at it (default
   * DEFAULT_RETRY_BUDGET, 30 s; the CLI's CHUNKED_BACKUP_RETRY_FOR)
   */
  readonly maxElapsed?: Duration.DurationInput
}

/**
 * The Schedule behind a policy: exponential backoff with jitter, capped per
 * delay, ended by the time budget (and by `attempts` when given). The delays
 * run up to the budget exactly, so a store back just before it is still found.
 */
export const retrySchedule = (policy: RetryPolicy = {}) => {
  const maxDelay = Duration.decode(policy.maxDelay ?? Duration.seconds(5))
  const budget = Duration.decode(policy.maxElapsed ?? DEFAULT_RETRY_BUDGET)
  const backoff = Schedule.jittered(
    Schedule.modifyDelay(Schedule.exponential(policy.baseDelay ?? Duration.millis(200)), (_, delay) => Duration.min(delay, maxDelay))
  )
  const counted: Schedule.Schedule<unknown> =
    policy.attempts === undefined ? backoff : Schedule.intersect(backoff, Schedule.recurs(policy.attempts))
  return Schedule.intersect(counted, Schedule.elapsed).pipe(
    Schedule.whileOutput(([, elapsed]) => Duration.lessThan(elapsed, budget)),
    Schedule.modifyDelay(([, elapsed], delay) => Duration.min(delay, Duration.subtract(budget, elapsed)))
  )
}

const UNIT_MILLIS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/**
 * A retry budget as people write it: `30s`, `1500ms`, `2m`, `1h`, or a bare
 * number of seconds (`0` retries nothing). Left: why the text is refused.
 */
export const parseRetryBudget = (text: string): Either.Either<Duration.Duration, string> => {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text)
  if (match === null) return Either.left(`${JSON.stringify(text)} is not a duration: expected e.g. 30s, 1500ms, 2m or a number of seconds`)
  return Either.right(Duration.millis(Number(match[1]) * UNIT_MILLIS[match[2] ?? "s"]!))
}

/** The ObjectStore operations, by name. */
export type StoreOperation = "ensureContainer" | "list" | "put" | "get" | "delete" | "removeLeftovers"

/**
 * A store whose every call goes through `around(operation, container,
 * object, call)` (`object` is the prefix for list/removeLeftovers, "" for
 * ensureContainer): the one place that knows the shape of the interface.
 */
export const aroundEach = (
  store: ObjectStore,
  around: <A, E extends { readonly _tag: string }>(
    operation: StoreOperation,
    container: string,
    object: string,
    call: Effect.Effect<A, E>
  ) => Effect.Effect<A, E>
): ObjectStore => ({
  ...withoutLocalPaths(store),
  ensureContainer: (container) => around("ensureContainer", container, "", store.ensureContainer(container)),
  list: (container, prefix) => around("list", container, prefix, store.list(container, prefix)),
  put: (container, object, bytes, extra) => around("put", container, object, store.put(container, object, bytes, extra)),
  get: (container, object, extra) => around("get", container, object, store.get(container, object, extra)),
  delete: (container, object) => around("delete", container, object, store.delete(container, object)),
  ...(store.removeLeftovers === undefined
    ? {}
    : {
        removeLeftovers: (container: string, prefix: string) =>
          around("removeLeftovers", container, prefix, store.removeLeftovers!(container, prefix))
      }),
  ...(store.listSizes === undefined
    ? {}
    : { listSizes: (container: string, prefix: string) => around("list", container, prefix, store.listSizes!(container, prefix)) })
})

/**
 * Retries transient failures (`StoreUnavailable`) and nothing else. Every
 * ObjectStore operation is idempotent (a put replaces the whole object, a
 * delete of a missing object succeeds), so all of them may be retried.
 */
export const withRetry = (store: ObjectStore, policy: RetryPolicy = {}): ObjectStore => {
  const schedule = retrySchedule(policy)
  return aroundEach(store, (_operation, _container, _object, call) => Effect.retry(call, { schedule, while: isTransient }))
}

/** At most `permits` store calls at once, shared by everything using this store. */
export const withConcurrencyLimit = (store: ObjectStore, permits: number): Effect.Effect<ObjectStore> =>
  Effect.map(Effect.makeSemaphore(permits), (semaphore) =>
    aroundEach(store, (_operation, _container, _object, call) => semaphore.withPermits(1)(call))
  )

/** A span per store call, named by operation, with container and object as attributes. */
export const withTracing = (store: ObjectStore): ObjectStore =>
  aroundEach(store, (operation, container, object, call) =>
    Effect.withSpan(call, `ObjectStore.${operation}`, {
      attributes: { "store.kind": store.kind, container, ...(object === "" ? {} : { object }) }
    })
  )

/** Wraps the ObjectStore already in context with `wrap`. */
export const decorate = (wrap: (store: ObjectStore) => ObjectStore | Effect.Effect<ObjectStore>) =>
  Layer.effect(
    ObjectStore,
    Effect.flatMap(ObjectStore, (store) => {
      const wrapped = wrap(store)
      return Effect.isEffect(wrapped) ? wrapped : Effect.succeed(wrapped)
    })
  )

/** A layer over the ObjectStore below it that retries transient failures (`retrySchedule(policy)`). */
export const layerRetry = (policy: RetryPolicy = {}) => decorate((store) => withRetry(store, policy))
/** A layer over the ObjectStore below it that lets at most `permits` calls run at once. */
export const layerConcurrencyLimit = (permits: number) => decorate((store) => withConcurrencyLimit(store, permits))
/** A layer over the ObjectStore below it that records a span per call. */
export const layerTracing = () => decorate(withTracing)
