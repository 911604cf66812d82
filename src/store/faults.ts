/**
 * Fault injection, for tests: a decorator that wraps any ObjectStore and, by
 * a seeded plan, fails chosen calls (transiently or permanently), flips a byte
 * of what a read returns, stores a prefix of what a write was given (and
 * reports success: a silent corruption only the restore's md5 check can
 * catch), or delays calls.
 *
 * Deterministic: whether a rule fires on a call, and how (which byte, how
 * long a prefix), is drawn from a PRNG seeded with (seed, rule, operation,
 * container, object, attempt), where `attempt` counts the earlier calls of
 * the same operation on the same container and object. No global call
 * counter is involved, so concurrency that reorders calls on different
 * objects changes no decision; the same plan and the same calls per key give
 * the same faults. (Driver object names embed the backup's UTC second: pin
 * `BackupOptions.now` to replay a run.)
 *
 * When several rules fire on one call, their delays add up, then the first
 * failing rule (transient or permanent) wins; otherwise truncate or corrupt
 * applies.
 */
import { Duration, Effect, Layer } from "effect"
import { decorate, type StoreOperation } from "./decorators.js"
import { StoreError, StoreUnavailable } from "./errors.js"
import { withoutLocalPaths, type ObjectStore } from "./ObjectStore.js"


/**
 * - `transient`: fail with StoreUnavailable (a retry may succeed)
 * - `permanent`: fail with StoreError
 * - `corrupt`: `get` only; the returned bytes have one byte inverted (xor 0xff)
 * - `truncate`: `put` only; a strict prefix of the bytes is stored, the call succeeds
 * - `delay`: sleep `delay` before the call
 */
export type FaultKind = "transient" | "permanent" | "corrupt" | "truncate" | "delay"

/** Which calls a fault hits (operations, object names, a rate) and what it does. */
export interface FaultRule {
  readonly kind: FaultKind
  /** the operations it applies to; default all (corrupt: get only, truncate: put only) */
  readonly operations?: ReadonlyArray<StoreOperation>
  /**
   * Which calls it applies to, by object name (the prefix for `list` and
   * `removeLeftovers`, "" for `ensureContainer`) and container; default all.
   */
  readonly objects?: (object: string, container: string) => boolean
  /** probability that it fires on a matching call, 0..1; default 1 */
  readonly rate?: number
  /** it may fire only on the first `attempts` calls of each key; default: on every call */
  readonly attempts?: number
  /** for `delay`; default 10 ms */
  readonly delay?: Duration.DurationInput
}

/** A seeded set of fault rules: the same seed injects the same faults. */
export interface FaultPlan {
  readonly seed: number
  readonly rules: ReadonlyArray<FaultRule>
  /** told of every fault injected, as it happens */
  readonly onFault?: (fault: InjectedFault) => void
}

/** A fault that was injected, as `onFault` reports it. */
export interface InjectedFault {
  readonly kind: FaultKind
  /** index of the rule in the plan */
  readonly rule: number
  readonly operation: StoreOperation
  readonly container: string
  readonly object: string
  /** 0 for the first call of this operation on this key */
  readonly attempt: number
  /** e.g. "byte 17 of 30", "kept 12 of 30 bytes" */
  readonly detail?: string
}

/** mulberry32: a small, fast, seeded PRNG returning floats in [0, 1). */
export const seededRandom = (seed: number): (() => number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** FNV-1a over the parts, starting from the seed: the PRNG seed of one decision. */
const keySeed = (seed: number, parts: ReadonlyArray<string | number>): number => {
  let h = (0x811c9dc5 ^ seed) >>> 0
  for (const char of parts.join("\u0000")) {
    h ^= char.codePointAt(0)!
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

const everyOperation: ReadonlyArray<StoreOperation> = ["ensureContainer", "list", "put", "get", "delete", "removeLeftovers"]
const defaultOperations: Record<FaultKind, ReadonlyArray<StoreOperation>> = {
  transient: everyOperation,
  permanent: everyOperation,
  delay: everyOperation,
  corrupt: ["get"],
  truncate: ["put"]
}

interface Fired {
  readonly rule: FaultRule
  readonly index: number
  readonly random: () => number
}

/** The store with the plan's faults injected: for testing how programs behave when a store misbehaves. */
export const withFaults = (store: ObjectStore, plan: FaultPlan): ObjectStore => {
  const attempts = new Map<string, number>()

  /** The rules that fire on this call; counts the attempt. */
  const decide = (operation: StoreOperation, container: string, object: string) => {
    const key = `${operation}\u0000${container}\u0000${object}`
    const attempt = attempts.get(key) ?? 0
    attempts.set(key, attempt + 1)
    const fired: Array<Fired> = []
    plan.rules.forEach((rule, index) => {
      const applies =
        defaultOperations[rule.kind].includes(operation) &&
        (rule.operations === undefined || rule.operations.includes(operation)) &&
        (rule.objects === undefined || rule.objects(object, container)) &&
        (rule.attempts === undefined || attempt < rule.attempts)
      if (!applies) return
      const random = seededRandom(keySeed(plan.seed, [index, operation, container, object, attempt]))
      if (random() < (rule.rate ?? 1)) fired.push({ rule, index, random })
    })
    const report = (fault: Fired, detail?: string) =>
      plan.onFault?.({
        kind: fault.rule.kind, rule: fault.index, operation, container, object, attempt,
        ...(detail === undefined ? {} : { detail })
      })
    return { attempt, fired, report }
  }

  const inject = <A, E, R>(
    operation: StoreOperation,
    container: string,
    object: string,
    call: (fired: ReadonlyArray<Fired>, report: (fault: Fired, detail?: string) => void) => Effect.Effect<A, E, R>
  ): Effect.Effect<A, E | StoreUnavailable | StoreError, R> =>
    Effect.suspend(() => {
      const { attempt, fired, report } = decide(operation, container, object)
      const delays = fired.filter((f) => f.rule.kind === "delay")
      const delay = delays.reduce((sum, f) => Duration.sum(sum, f.rule.delay ?? Duration.millis(10)), Duration.zero)
      delays.forEach((f) => report(f, Duration.format(f.rule.delay ?? Duration.millis(10))))
      const failure = fired.find((f) => f.rule.kind === "transient" || f.rule.kind === "permanent")
      const run = Effect.suspend((): Effect.Effect<A, E | StoreUnavailable | StoreError, R> => {
        if (failure === undefined) return call(fired, report)
        report(failure)
        const fields = {
          operation, container, ...(object === "" ? {} : { object }),
          reason: `injected ${failure.rule.kind} fault (seed ${plan.seed}, rule ${failure.index}, attempt ${attempt})`
        }
        return Effect.fail(failure.rule.kind === "transient" ? new StoreUnavailable(fields) : new StoreError(fields))
      })
      return Duration.greaterThan(delay, Duration.zero) ? Effect.zipRight(Effect.sleep(delay), run) : run
    })

  const firing = (fired: ReadonlyArray<Fired>, kind: FaultKind) => fired.find((f) => f.rule.kind === kind)

  return {
    ...withoutLocalPaths(store),
    ensureContainer: (container) => inject("ensureContainer", container, "", () => store.ensureContainer(container)),
    list: (container, prefix) => inject("list", container, prefix, () => store.list(container, prefix)),
    delete: (container, object) => inject("delete", container, object, () => store.delete(container, object)),
    put: (container, object, bytes, extra) =>
      inject("put", container, object, (fired, report) => {
        const truncate = firing(fired, "truncate")
        if (truncate === undefined || bytes.length === 0) return store.put(container, object, bytes, extra)
        const kept = Math.floor(truncate.random() * bytes.length)
        report(truncate, `kept ${kept} of ${bytes.length} bytes`)
        return store.put(container, object, bytes.slice(0, kept), extra)
      }),
    get: (container, object, extra) =>
      inject("get", container, object, (fired, report) =>
        Effect.map(store.get(container, object, extra), (bytes) => {
          const corrupt = firing(fired, "corrupt")
          if (corrupt === undefined || bytes.length === 0) return bytes
          const at = Math.floor(corrupt.random() * bytes.length)
          const copy = Uint8Array.from(bytes)
          copy[at] = copy[at]! ^ 0xff
          report(corrupt, `byte ${at} of ${bytes.length}`)
          return copy
        })
      ),
    ...(store.removeLeftovers === undefined
      ? {}
      : { removeLeftovers: (container: string, prefix: string) => inject("removeLeftovers", container, prefix, () => store.removeLeftovers!(container, prefix)) }),
    ...(store.listSizes === undefined
      ? {}
      : { listSizes: (container: string, prefix: string) => inject("list", container, prefix, () => store.listSizes!(container, prefix)) })
  }
}

/** Wraps the ObjectStore in context with `withFaults`. */
export const layerFaults = (plan: FaultPlan): Layer.Layer<ObjectStore, never, ObjectStore> =>
  decorate((store) => withFaults(store, plan))
