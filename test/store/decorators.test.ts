/**
 * The store decorators: withRetry (transient errors only, backoff, bounded in
 * attempts and time), withConcurrencyLimit, withTracing, and withFaults
 * (each fault kind, and determinism for a seed).
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Either, Exit, Fiber, Layer, Option, TestClock, Tracer } from "effect"
import {
  ContainerNotFound,
  InvalidObjectName,
  DEFAULT_RETRY_BUDGET,
  layerConcurrencyLimit,
  layerFaults,
  layerMemory,
  layerRetry,
  layerTracing,
  makeMemory,
  ObjectNotFound,
  parseRetryBudget,
  StoreError,
  StoreUnavailable,
  withConcurrencyLimit,
  withFaults,
  withRetry,
  withTracing,
  type FaultPlan,
  type InjectedFault,
  type ObjectStore,
  type StoreOperation
} from "../../src/index.js"
import { objectStoreConformance } from "../../src/testing/index.js"

// Each decorator is an ObjectStore layer of its own: it passes the conformance suite over the memory store.
const decorated = {
  "withRetry": layerRetry({ attempts: 2 }),
  "withConcurrencyLimit": layerConcurrencyLimit(2),
  "withTracing": layerTracing(),
  "withFaults (no rules)": layerFaults({ seed: 1, rules: [] })
} as const
for (const [name, decorator] of Object.entries(decorated)) {
  objectStoreConformance(`${name} over memory`, decorator.pipe(Layer.provide(layerMemory())), {
    slashInObjectNames: true,
    refusingLayer: decorator.pipe(Layer.provide(layerMemory({ createContainers: false })))
  })
}

const bytes = (text: string) => new TextEncoder().encode(text)
const operations: ReadonlyArray<StoreOperation> = ["ensureContainer", "list", "put", "get", "delete"]

/** Calls `operation` on `store` with fixed arguments. */
const call = (store: ObjectStore, operation: StoreOperation, object = "o"): Effect.Effect<unknown, { readonly _tag: string }> => {
  switch (operation) {
    case "ensureContainer":
      return store.ensureContainer("c")
    case "list":
      return store.list("c", "")
    case "put":
      return store.put("c", object, bytes("body"))
    case "get":
      return store.get("c", object)
    case "delete":
      return store.delete("c", object)
    case "removeLeftovers":
      return store.removeLeftovers?.("c", object) ?? Effect.succeed(0)
  }
}

/** A memory store with container "c" and object "o", whose `operation` first runs `before` (which may fail). */
const scripted = (operation: StoreOperation, before: (attempt: number) => Effect.Effect<void, { readonly _tag: string }>) =>
  Effect.gen(function* () {
    const base = (yield* makeMemory())
    yield* base.ensureContainer("c")
    yield* base.put("c", "o", bytes("body"))
    const times: Array<number> = []
    const wrapped = <A, E>(effect: Effect.Effect<A, E>) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        times.push(now)
        return Effect.zipRight(before(times.length - 1), effect)
      })
    const store = {
      ...base,
      [operation]: (...args: Array<never>) => wrapped((base[operation] as (...a: Array<never>) => Effect.Effect<unknown, unknown>)(...args))
    } as ObjectStore
    return { store, times }
  })

const unavailable = new StoreUnavailable({ operation: "get", container: "c", object: "o", reason: "busy" })
const gaps = (times: ReadonlyArray<number>) => times.slice(1).map((t, i) => t - times[i]!)

/** Runs `effect` to its end while the TestClock jumps far ahead. */
const withTime = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.fork(effect)
    yield* TestClock.adjust("1 hour")
    return yield* Fiber.await(fiber)
  })

describe("withRetry", () => {
  it.effect("retries StoreUnavailable with exponential, jittered backoff until it succeeds", () =>
    Effect.gen(function* () {
      const { store, times } = yield* scripted("get", (n) => (n < 3 ? Effect.fail(unavailable) : Effect.void))
      const exit = yield* withTime(withRetry(store, { baseDelay: "100 millis", attempts: 5 }).get("c", "o"))
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(times.length).toBe(4)
      // 100, 200, 400 ms, each with ±20 % jitter
      gaps(times).forEach((gap, i) => {
        expect(gap).toBeGreaterThanOrEqual(0.8 * 100 * 2 ** i)
        expect(gap).toBeLessThanOrEqual(1.2 * 100 * 2 ** i)
      })
    })
  )

  it.effect.each(operations)("retries a transient failure of %s", (operation) =>
    Effect.gen(function* () {
      const { store, times } = yield* scripted(operation, (n) => (n === 0 ? Effect.fail(unavailable) : Effect.void))
      const exit = yield* withTime(call(withRetry(store, { baseDelay: "10 millis" }), operation))
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(times.length).toBe(2)
    })
  )

  const permanent = [
    new StoreError({ operation: "get", container: "c", object: "o", reason: "denied" }),
    new ObjectNotFound({ container: "c", object: "o" }),
    new InvalidObjectName({ name: "..", reason: "is '..'" }),
    new ContainerNotFound({ container: "c" })
  ]
  it.effect.each(permanent.flatMap((error) => operations.map((operation) => ({ error, operation }))))(
    "never retries $error._tag ($operation)",
    ({ error, operation }) =>
      Effect.gen(function* () {
        const { store, times } = yield* scripted(operation, () => Effect.fail(error))
        const exit = yield* withTime(call(withRetry(store, { baseDelay: "10 millis", attempts: 10 }), operation))
        expect(exit).toStrictEqual(Exit.fail(error))
        expect(times).toEqual([0])
      })
  )

  it.effect("a name the store refuses is not retried (through make's checks)", () =>
    Effect.gen(function* () {
      let calls = 0
      const base = (yield* makeMemory())
      const counting: ObjectStore = { ...base, get: (c, o, x) => Effect.zipRight(Effect.sync(() => calls++), base.get(c, o, x)) }
      const error = yield* Effect.flip(withRetry(counting).get("../etc", "passwd"))
      expect(error._tag).toBe("InvalidObjectName")
      expect(calls).toBe(1)
    })
  )

  it.effect("gives up after `attempts` retries with the last StoreUnavailable", () =>
    Effect.gen(function* () {
      const { store, times } = yield* scripted("put", () => Effect.fail(unavailable))
      const exit = yield* withTime(withRetry(store, { baseDelay: "100 millis", attempts: 3 }).put("c", "o", bytes("x")))
      expect(exit).toStrictEqual(Exit.fail(unavailable))
      expect(times.length).toBe(4)
      expect(times.at(-1)!).toBeLessThanOrEqual(1.2 * (100 + 200 + 400))
    })
  )

  it.effect("single delays are capped by maxDelay (plus jitter)", () =>
    Effect.gen(function* () {
      const { store, times } = yield* scripted("list", () => Effect.fail(unavailable))
      yield* withTime(withRetry(store, { baseDelay: "1 second", maxDelay: "3 seconds", attempts: 8 }).list("c", ""))
      expect(times.length).toBe(9)
      expect(Math.max(...gaps(times))).toBeLessThanOrEqual(1.2 * 3000)
      expect(gaps(times).slice(3).every((gap) => gap >= 0.8 * 3000)).toBe(true)
    })
  )

  it.effect("gives up once maxElapsed has passed, whatever the attempts left", () =>
    Effect.gen(function* () {
      const { store, times } = yield* scripted("delete", () => Effect.fail(unavailable))
      const policy = { baseDelay: "1 second", maxDelay: "1 second", attempts: 1000, maxElapsed: "10 seconds" } as const
      const exit = yield* withTime(withRetry(store, policy).delete("c", "o"))
      expect(exit).toStrictEqual(Exit.fail(unavailable))
      // No retry starts after 10 s: the last delay is shortened to end at it.
      expect(times.length).toBeGreaterThan(5)
      expect(times.length).toBeLessThan(20)
      expect(times.at(-1)!).toBeCloseTo(10_000, 0)
    })
  )

  it.effect("by default the time budget alone ends the retries: the delays cover DEFAULT_RETRY_BUDGET, and the last retry is at it", () =>
    Effect.gen(function* () {
      const { store, times } = yield* scripted("put", () => Effect.fail(unavailable))
      const exit = yield* withTime(withRetry(store).put("c", "o", bytes("x")))
      expect(exit).toStrictEqual(Exit.fail(unavailable))
      expect(times.at(-1)!).toBeCloseTo(Duration.toMillis(DEFAULT_RETRY_BUDGET), 0)
      // more than the 5 retries of a count, none more than 5 s (+20 % jitter) apart
      expect(times.length).toBeGreaterThan(8)
      expect(Math.max(...gaps(times))).toBeLessThanOrEqual(1.2 * 5000)
    })
  )

  it.effect.each([3_000, 14_000, 29_000])("a store back %d ms after the first failure is reached within the default budget", (outage) =>
    Effect.gen(function* () {
      const { store, times } = yield* scripted("get", () =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => (now < outage ? Effect.fail(unavailable) : Effect.void))
      )
      const exit = yield* withTime(withRetry(store).get("c", "o"))
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(times.at(-1)!).toBeGreaterThanOrEqual(outage)
      // (+1 ms: the jittered delays are fractional milliseconds)
      expect(times.at(-1)!).toBeLessThanOrEqual(Math.min(outage + 1.2 * 5000, Duration.toMillis(DEFAULT_RETRY_BUDGET)) + 1)
    })
  )

  it.effect("a store back only after the budget is not waited for", () =>
    Effect.gen(function* () {
      const { store, times } = yield* scripted("get", () =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => (now < 2_500 ? Effect.fail(unavailable) : Effect.void))
      )
      const exit = yield* withTime(withRetry(store, { maxElapsed: "2 seconds" }).get("c", "o"))
      expect(exit).toStrictEqual(Exit.fail(unavailable))
      expect(times.at(-1)!).toBeCloseTo(2_000, 0)
    })
  )
})

describe("parseRetryBudget", () => {
  it.each([
    ["30s", 30_000],
    ["1500ms", 1_500],
    ["2m", 120_000],
    ["1h", 3_600_000],
    ["45", 45_000],
    [" 2.5 s ", 2_500],
    ["0", 0]
  ])("%j is %d ms", (text, millis) => {
    expect(Either.map(parseRetryBudget(text), Duration.toMillis)).toStrictEqual(Either.right(millis))
  })

  it.each(["", "soon", "-5s", "30 seconds", "1e3", "5d", "s"])("%j is refused, quoted in the reason", (text) => {
    const parsed = parseRetryBudget(text)
    expect(Either.isLeft(parsed) && parsed.left.includes(JSON.stringify(text))).toBe(true)
  })
})

describe("withConcurrencyLimit", () => {
  /** A store whose every call takes 10 ms and counts how many run at once. */
  const gauged = Effect.gen(function* () {
    const base = (yield* makeMemory())
    yield* base.ensureContainer("c")
    const gauge = { now: 0, max: 0, calls: 0 }
    const slow = <A, E>(effect: Effect.Effect<A, E>) =>
      Effect.acquireUseRelease(
        Effect.sync(() => {
          gauge.calls++
          gauge.max = Math.max(gauge.max, ++gauge.now)
        }),
        () => Effect.zipRight(Effect.sleep("10 millis"), effect),
        () => Effect.sync(() => gauge.now--)
      )
    const store: ObjectStore = {
      ...base,
      ensureContainer: (c) => slow(base.ensureContainer(c)),
      list: (c, p) => slow(base.list(c, p)),
      put: (c, o, b, x) => slow(base.put(c, o, b, x)),
      get: (c, o, x) => slow(base.get(c, o, x)),
      delete: (c, o) => slow(base.delete(c, o))
    }
    return { store, gauge }
  })

  it.effect.each([1, 3, 8])("never more than %i calls in flight, across all operations", (permits) =>
    Effect.gen(function* () {
      const { store, gauge } = yield* gauged
      const limited = yield* withConcurrencyLimit(store, permits)
      const calls = Array.from({ length: 40 }, (_, i) =>
        Effect.ignore(call(limited, operations[i % operations.length]!, `o${i % 7}`))
      )
      const exit = yield* withTime(Effect.all(calls, { concurrency: "unbounded" }))
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(gauge.calls).toBe(40)
      expect(gauge.max).toBe(permits)
    })
  )

  it.effect("failed and interrupted calls give their permit back", () =>
    Effect.gen(function* () {
      const { store, gauge } = yield* gauged
      const limited = yield* withConcurrencyLimit(store, 2)
      // get of a missing object fails; then a call that is interrupted mid-flight
      const failures = yield* withTime(Effect.all(Array.from({ length: 5 }, () => Effect.exit(limited.get("c", "missing")))))
      expect(Exit.isSuccess(failures)).toBe(true)
      const stuck = yield* Effect.fork(limited.list("c", ""))
      yield* TestClock.adjust("1 millis")
      yield* Fiber.interrupt(stuck)
      const exit = yield* withTime(Effect.all([limited.put("c", "a", bytes("1")), limited.put("c", "b", bytes("2"))], { concurrency: 2 }))
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(gauge.now).toBe(0)
    })
  )
})

/** A tracer that records every span it creates, delegating to the current one. */
const recordingTracer = Effect.map(Effect.tracer, (base) => {
  const spans: Array<Tracer.Span> = []
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind, options) => {
      const span = base.span(name, parent, context, links, startTime, kind, options)
      spans.push(span)
      return span
    },
    context: (f, fiber) => base.context(f, fiber)
  })
  return { tracer, spans }
})

describe("withTracing", () => {
  it.effect("records a span per call, named by operation, with kind, container and object, under the caller's span", () =>
    Effect.gen(function* () {
      const { tracer, spans } = yield* recordingTracer
      const store = withTracing((yield* makeMemory()))
      yield* Effect.gen(function* () {
        yield* store.ensureContainer("c")
        yield* store.put("c", "o", bytes("x"))
        yield* store.get("c", "o")
        yield* store.list("c", "o")
        yield* store.delete("c", "o")
        yield* Effect.exit(store.get("c", "gone"))
      }).pipe(Effect.withSpan("caller"), Effect.withTracer(tracer))
      const caller = spans.find((span) => span.name === "caller")!
      const storeSpans = spans.filter((span) => span.name.startsWith("ObjectStore."))
      expect(storeSpans.map((span) => span.name)).toEqual([
        "ObjectStore.ensureContainer",
        "ObjectStore.put",
        "ObjectStore.get",
        "ObjectStore.list",
        "ObjectStore.delete",
        "ObjectStore.get"
      ])
      for (const span of storeSpans) {
        expect(span.attributes.get("store.kind")).toBe("memory")
        expect(span.attributes.get("container")).toBe("c")
        expect(Option.map(span.parent, (parent) => parent.spanId)).toStrictEqual(Option.some(caller.spanId))
        expect(span.status._tag).toBe("Ended")
      }
      expect(storeSpans[0]!.attributes.has("object")).toBe(false)
      expect(storeSpans[1]!.attributes.get("object")).toBe("o")
      // list records its prefix as the object attribute
      expect(storeSpans[3]!.attributes.get("object")).toBe("o")
      const failed = storeSpans[5]!.status
      expect(failed._tag === "Ended" && Exit.isFailure(failed.exit)).toBe(true)
      expect(storeSpans[2]!.status._tag === "Ended" && Exit.isSuccess((storeSpans[2]!.status as { exit: Exit.Exit<unknown, unknown> }).exit)).toBe(true)
    })
  )
})

describe("withFaults", () => {
  /** A fresh memory store with container "c" and objects o0..o{n-1}. */
  const seeded = (n: number) =>
    Effect.gen(function* () {
      const base = (yield* makeMemory())
      yield* base.ensureContainer("c")
      for (let i = 0; i < n; i++) yield* base.put("c", `o${i}`, bytes(`object number ${i}, some bytes to corrupt`))
      return base
    })

  /** Every operation on o0..o{n-1}, three times each, in the given order; returns the fault log and outcomes. */
  const exercise = (plan: Omit<FaultPlan, "onFault">, order: "forward" | "reverse" | "concurrent", n = 60) =>
    Effect.gen(function* () {
      const base = yield* seeded(n)
      const faults: Array<InjectedFault> = []
      const store = withFaults(base, { ...plan, onFault: (fault) => void faults.push(fault) })
      const keys = Array.from({ length: n }, (_, i) => `o${i}`)
      const perKey = (object: string) =>
        Effect.forEach([0, 1, 2], () =>
          Effect.forEach(["get", "put", "delete"] as const, (operation) =>
            Effect.map(Effect.either(call(store, operation, object)), (result) => `${object}:${operation}:${result._tag}`)
          )
        )
      const ordered = order === "reverse" ? [...keys].reverse() : keys
      const outcomes = yield* Effect.forEach(ordered, perKey, { concurrency: order === "concurrent" ? "unbounded" : 1 })
      const stored = yield* Effect.forEach(keys, (key) => Effect.either(base.get("c", key)))
      const sortKey = (f: InjectedFault) => `${f.object} ${f.operation} ${f.attempt} ${f.rule}`
      return {
        faults: [...faults].sort((a, b) => sortKey(a).localeCompare(sortKey(b))),
        ordered: faults,
        outcomes: outcomes.flat(2).sort(),
        stored
      }
    })

  const mixed: Omit<FaultPlan, "onFault"> = {
    seed: 42,
    rules: [
      { kind: "transient", rate: 0.2 },
      { kind: "permanent", operations: ["delete"], rate: 0.1 },
      { kind: "corrupt", rate: 0.3 },
      { kind: "truncate", rate: 0.3 }
    ]
  }

  it.effect("the same seed and the same calls give the same faults", () =>
    Effect.gen(function* () {
      const first = yield* exercise(mixed, "forward")
      const second = yield* exercise(mixed, "forward")
      expect(first.faults.length).toBeGreaterThan(20)
      expect(second.ordered).toStrictEqual(first.ordered)
      expect(second.outcomes).toStrictEqual(first.outcomes)
      expect(second.stored).toStrictEqual(first.stored)
      // every kind fired
      expect(new Set(first.faults.map((f) => f.kind))).toEqual(new Set(["transient", "permanent", "corrupt", "truncate"]))
    })
  )

  it.live("decisions are per key: reordering or running calls concurrently changes no fault", () =>
    Effect.gen(function* () {
      const forward = yield* exercise(mixed, "forward")
      const reverse = yield* exercise(mixed, "reverse")
      const concurrent = yield* exercise(mixed, "concurrent")
      expect(reverse.faults).toStrictEqual(forward.faults)
      expect(concurrent.faults).toStrictEqual(forward.faults)
      expect(concurrent.outcomes).toStrictEqual(forward.outcomes)
      expect(concurrent.stored).toStrictEqual(forward.stored)
    })
  )

  it.effect("another seed gives other faults", () =>
    Effect.gen(function* () {
      const first = yield* exercise(mixed, "forward")
      const other = yield* exercise({ ...mixed, seed: 43 }, "forward")
      expect(other.faults).not.toStrictEqual(first.faults)
    })
  )

  it.effect("rates hold roughly; rate 0 never fires, rate 1 always does", () =>
    Effect.gen(function* () {
      const count = (rate: number) =>
        Effect.map(exercise({ seed: 7, rules: [{ kind: "transient", operations: ["get"], rate }] }, "forward", 200), (r) => r.faults.length)
      expect(yield* count(0)).toBe(0)
      expect(yield* count(1)).toBe(600)
      const fifth = yield* count(0.2)
      expect(fifth).toBeGreaterThan(600 * 0.2 - 50)
      expect(fifth).toBeLessThan(600 * 0.2 + 50)
    })
  )

  it.effect("transient faults are StoreUnavailable, permanent ones StoreError, naming the call", () =>
    Effect.gen(function* () {
      const base = yield* seeded(1)
      const store = withFaults(base, {
        seed: 1,
        rules: [
          { kind: "transient", operations: ["get"] },
          { kind: "permanent", operations: ["put", "list", "ensureContainer"] }
        ]
      })
      const transient = yield* Effect.flip(store.get("c", "o0"))
      expect(transient).toBeInstanceOf(StoreUnavailable)
      expect(transient).toMatchObject({ operation: "get", container: "c", object: "o0" })
      expect(transient.message).toContain("injected transient fault (seed 1, rule 0, attempt 0)")
      const permanent = yield* Effect.flip(store.put("c", "o0", bytes("new")))
      expect(permanent).toBeInstanceOf(StoreError)
      expect(permanent.message).toContain("c/o0")
      expect((yield* Effect.flip(store.list("c", "o")))._tag).toBe("StoreError")
      const container = yield* Effect.flip(store.ensureContainer("c"))
      expect(container).toMatchObject({ _tag: "StoreError", operation: "ensureContainer", container: "c" })
      expect("object" in container).toBe(false)
      // a failed put stored nothing; delete is untouched
      expect(new TextDecoder().decode(yield* base.get("c", "o0"))).toContain("object number 0")
      yield* store.delete("c", "o0")
    })
  )

  it.effect("corrupt inverts one byte of what get returns and leaves the stored object alone", () =>
    Effect.gen(function* () {
      const base = yield* seeded(20)
      const faults: Array<InjectedFault> = []
      const store = withFaults(base, { seed: 3, rules: [{ kind: "corrupt" }], onFault: (f) => void faults.push(f) })
      for (let i = 0; i < 20; i++) {
        const original = yield* base.get("c", `o${i}`)
        const read = yield* store.get("c", `o${i}`)
        const differing = [...original].flatMap((byte, at) => (byte === read[at] ? [] : [at]))
        expect(read.length).toBe(original.length)
        expect(differing.length).toBe(1)
        expect(read[differing[0]!]).toBe(original[differing[0]!]! ^ 0xff)
        expect(faults.at(-1)?.detail).toBe(`byte ${differing[0]} of ${original.length}`)
      }
      // corrupt only ever applies to get
      yield* store.put("c", "p", bytes("plain"))
      expect(new TextDecoder().decode(yield* base.get("c", "p"))).toBe("plain")
    })
  )

  it.effect("truncate stores a strict prefix and reports success", () =>
    Effect.gen(function* () {
      const base = yield* seeded(0)
      const store = withFaults(base, { seed: 5, rules: [{ kind: "truncate", objects: (o) => o.startsWith("t") }] })
      const body = Uint8Array.from({ length: 1000 }, (_, i) => i % 256)
      const lengths = new Set<number>()
      for (let i = 0; i < 30; i++) {
        yield* store.put("c", `t${i}`, body)
        const stored = yield* base.get("c", `t${i}`)
        expect(stored.length).toBeLessThan(body.length)
        expect(Buffer.from(stored).equals(Buffer.from(body.subarray(0, stored.length)))).toBe(true)
        lengths.add(stored.length)
      }
      expect(lengths.size).toBeGreaterThan(20)
      yield* store.put("c", "u", body)
      expect((yield* base.get("c", "u")).length).toBe(1000)
    })
  )

  it.effect("delay holds a call back by its duration", () =>
    Effect.gen(function* () {
      const base = yield* seeded(1)
      const store = withFaults(base, { seed: 1, rules: [{ kind: "delay", operations: ["get"], delay: "5 seconds" }] })
      const fiber = yield* Effect.fork(store.get("c", "o0"))
      yield* TestClock.adjust("4 seconds")
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust("1 second")
      expect(new TextDecoder().decode(yield* Fiber.join(fiber))).toContain("object number 0")
      // other operations are not delayed
      yield* store.list("c", "")
    })
  )

  it.effect("removeLeftovers is covered when the store has it, and not added when it has not", () =>
    Effect.gen(function* () {
      const base = yield* seeded(1)
      const plan: FaultPlan = { seed: 1, rules: [{ kind: "permanent", operations: ["removeLeftovers"] }] }
      expect(withFaults(base, plan).removeLeftovers).toBeUndefined()
      const store = withFaults({ ...base, removeLeftovers: () => Effect.succeed(0) }, plan)
      expect(yield* Effect.flip(store.removeLeftovers!("c", "pre"))).toMatchObject({ _tag: "StoreError", operation: "removeLeftovers", object: "pre" })
      yield* store.get("c", "o0")
    })
  )

  it.effect("attempts limits a rule to the first calls of each key, so withRetry gets through", () =>
    Effect.gen(function* () {
      const base = yield* seeded(3)
      const faults: Array<InjectedFault> = []
      const flaky = withFaults(base, { seed: 9, rules: [{ kind: "transient", attempts: 2 }], onFault: (f) => void faults.push(f) })
      const store = withRetry(flaky, { baseDelay: "1 millis", attempts: 2 })
      const exit = yield* withTime(Effect.all([store.get("c", "o0"), store.get("c", "o1"), store.put("c", "o2", bytes("x"))]))
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(faults.map((f) => `${f.operation} ${f.object} ${f.attempt}`)).toEqual([
        "get o0 0", "get o0 1", "get o1 0", "get o1 1", "put o2 0", "put o2 1"
      ])
    })
  )
})
