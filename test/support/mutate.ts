/**
 * A seeded mutator for fuzzing stored objects: blind byte damage (flips,
 * truncation, a duplicated range, garbage) for any object, and JSON-aware
 * edits for `_metadata` and `_sha256file` (wrong types, huge and negative
 * numbers, overlapping and out-of-volume ranges, unknown compression names,
 * deep nesting, long strings, removed or duplicated keys and list items).
 * The same seed gives the same mutation, so a failing case can be replayed.
 */

/** mulberry32: a small, fast, seedable PRNG (quality is not the point here). */
export const makeRandom = (seed: number) => {
  let state = seed >>> 0
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (n: number) => Math.floor(next() * n)
  const pick = <A>(items: ReadonlyArray<A>): A => items[int(items.length)]!
  return { next, int, pick }
}
export type Random = ReturnType<typeof makeRandom>

/** A mutated object and a short description of what was done (for failure messages). */
export interface Mutation {
  readonly bytes: Uint8Array
  readonly what: string
}

const HOSTILE_NUMBERS = [0, -1, -4096, 0.5, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 1e308, -1e308, Number.MAX_SAFE_INTEGER, 1e21]
const WRONG_TYPES: ReadonlyArray<unknown> = [null, true, "", "12", [], {}, [1, 2], { length: 1 }]

/** Stands for a deeply nested array until the document is text again. */
const NEST_MARK = "\u0000nest\u0000"

const concat = (...parts: ReadonlyArray<Uint8Array>) => Uint8Array.from(Buffer.concat(parts))

/** Damage that knows nothing of the format: for data objects and documents alike. */
export const mutateBytes = (random: Random, original: Uint8Array): Mutation => {
  const bytes = Uint8Array.from(original)
  const at = () => random.int(Math.max(1, bytes.length))
  switch (random.int(5)) {
    case 0: {
      const flips = 1 + random.int(8)
      for (let i = 0; i < flips && bytes.length > 0; i++) bytes[at()]! ^= 1 << random.int(8)
      return { bytes, what: `${flips} bit flips` }
    }
    case 1: {
      const length = at()
      return { bytes: bytes.slice(0, length), what: `truncated to ${length} bytes` }
    }
    case 2: {
      const start = at()
      const end = Math.min(bytes.length, start + 1 + random.int(4096))
      return { bytes: concat(bytes.subarray(0, end), bytes.subarray(start, end), bytes.subarray(end)), what: `range ${start}..${end} duplicated` }
    }
    case 3: {
      const start = at()
      const garbage = new Uint8Array(1 + random.int(2048)).map(() => random.int(256))
      return { bytes: concat(bytes.subarray(0, start), garbage, bytes.subarray(start + garbage.length)), what: `${garbage.length} garbage bytes at ${start}` }
    }
    default:
      return { bytes: new Uint8Array(0), what: "emptied" }
  }
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
type Container = Json[] | { [key: string]: Json }

/** Every array and object inside `root` (root included), to pick a place to edit. */
const containersOf = (root: Json): Container[] => {
  // Iterative: a document nested thousands deep must not overflow the stack.
  const found: Container[] = []
  const pending: Json[] = [root]
  while (pending.length > 0) {
    const value = pending.pop()!
    if (value === null || typeof value !== "object") continue
    found.push(value)
    pending.push(...(Array.isArray(value) ? value : Object.values(value)))
  }
  return found
}

const keysOf = (container: Container): Array<string | number> => (Array.isArray(container) ? container.map((_, i) => i) : Object.keys(container))

const set = (container: Container, key: string | number, value: unknown) => {
  ;(container as Record<string | number, unknown>)[key] = value
}

/** Entries of a `_metadata` object list: `{ name: { offset, length, ... } }`. */
const objectEntries = (root: Json): Array<Record<string, Json>> => {
  const list = root !== null && typeof root === "object" && !Array.isArray(root) ? root["objects"] : undefined
  if (!Array.isArray(list)) return []
  return list.flatMap((item) => {
    if (item === null || typeof item !== "object" || Array.isArray(item)) return []
    const inner = Object.values(item)[0]
    return inner !== null && typeof inner === "object" && !Array.isArray(inner) ? [inner] : []
  })
}

/** A structural edit of a parsed document; returns its description. */
const editTree = (random: Random, root: Json, volumeBytes: number): string => {
  const entries = objectEntries(root)
  const entry = entries.length > 0 ? random.pick(entries) : undefined
  const containers = containersOf(root)
  if (containers.length === 0) return "nothing to edit; top level replaced by a number"
  const container = random.pick(containers)
  const keys = keysOf(container)
  const key = keys.length > 0 ? random.pick(keys) : undefined
  switch (random.int(10)) {
    case 0:
      if (key === undefined) break
      set(container, key, random.pick(WRONG_TYPES))
      return `${key} given a wrong type`
    case 1:
      if (key === undefined) break
      set(container, key, random.pick(HOSTILE_NUMBERS))
      return `${key} set to a hostile number`
    case 2:
      if (key === undefined) break
      if (Array.isArray(container)) container.splice(key as number, 1)
      else delete container[key as string]
      return `${key} removed`
    case 3:
      if (!Array.isArray(container) || key === undefined) break
      container.splice(random.int(container.length + 1), 0, structuredClone(container[key as number]!))
      return `list item ${key} duplicated`
    case 4:
      if (key === undefined) break
      set(container, key, "x".repeat(1 << (10 + random.int(11))))
      return `${key} made a very long string`
    case 5:
      if (entry === undefined) break
      entry["compression"] = random.pick(["lzma", "ZLIB", "", "zstd\u0000", "none ", "gzip"])
      return `compression set to ${JSON.stringify(entry["compression"])}`
    case 6:
      if (entry === undefined) break
      entry[random.pick(["offset", "length"])] = random.pick([-1, -512, volumeBytes, volumeBytes + 1, volumeBytes * 2, 2 ** 53, 1e308])
      return "an object range moved out of the volume"
    case 7: {
      if (entries.length < 2) break
      const [a, b] = [random.pick(entries), random.pick(entries)]
      a["offset"] = b["offset"]!
      if (random.int(2) === 0) a["length"] = (typeof b["length"] === "number" ? b["length"] : 0) * 2
      return "two object ranges overlap"
    }
    case 8: {
      if (key === undefined) break
      // Written into the text after stringifying (which would recurse that deep).
      const depth = 1 + random.int(5000)
      set(container, key, NEST_MARK)
      return `${key} nested ${depth} deep`
    }
    default:
      if (Array.isArray(container) || key === undefined) break
      container[`${String(key)}_unknown`] = container[key as string]!
      return "an unknown key added"
  }
  return "nothing to edit; top level replaced by a number"
}

/**
 * A JSON-aware edit of a document (falls back to byte damage when the
 * document is not JSON, as after an earlier truncation). Duplicated keys are
 * made in the text, as JSON.stringify cannot write them.
 */
export const mutateDocument = (random: Random, original: Uint8Array, volumeBytes: number): Mutation => {
  const text = Buffer.from(original).toString("utf8")
  let root: Json
  try {
    root = JSON.parse(text) as Json
  } catch {
    return mutateBytes(random, original)
  }
  const choice = random.int(12)
  if (choice === 0) return mutateBytes(random, original)
  if (choice === 1) {
    const match = /"([a-z_0-9]+)": /.exec(text.slice(random.int(text.length)))
    const duplicate = match === null ? '"objects": 7, ' : `"${match[1]}": ${JSON.stringify(random.pick(WRONG_TYPES))}, `
    return { bytes: Buffer.from(text.replace("{", `{${duplicate}`)), what: `key duplicated in the text: ${duplicate}` }
  }
  const what = editTree(random, root, volumeBytes)
  if (what.startsWith("nothing")) root = random.pick(HOSTILE_NUMBERS)
  let edited: string
  try {
    edited = JSON.stringify(root)
  } catch {
    // Already nested too deep (by an earlier edit) to stringify: damage the bytes instead.
    return mutateBytes(random, original)
  }
  const depth = /nested (\d+) deep/.exec(what)
  if (depth !== null) edited = edited.replace(JSON.stringify(NEST_MARK), "[".repeat(Number(depth[1])) + "]".repeat(Number(depth[1])))
  return { bytes: Buffer.from(edited), what }
}
