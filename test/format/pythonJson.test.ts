/**
 * `pythonJsonDumps` against the real thing: Debian's `/usr/bin/python3`
 * running `json.dumps(value, sort_keys=True, indent=2)`, compared as text
 * (and, for the documents, as the bytes `encodeDocument` writes).
 *
 * Number typing: a JS number the encoder prints as an int (a safe integer,
 * -0 included) goes to Python as an int; every other number (fractions,
 * integral values beyond 2^53, NaN, ±Infinity) goes as a float, carried by
 * its exact IEEE-754 bits so no JS decimal formatting sits between the two
 * sides. A bigint goes as an int.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck as fc } from "effect"
import type { BackupMetadata, Sha256File } from "../../src/domain/documents.js"
import { cinderTimestamp, encodeDocument, encodeSha256File } from "../../src/format/documents.js"
import { makeDigestList } from "../../src/driver/digests.js"
import { pythonJsonDumps } from "../../src/format/pythonJson.js"
import { startPythonServer, type PythonServer } from "../support/debianPython.js"

const FLOAT_KEY = "\u0000f64"

const pythonSource = `
import json, struct
from datetime import datetime, timedelta, timezone

FLOAT_KEY = "\\x00f64"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

def _hook(d):
    if len(d) == 1 and FLOAT_KEY in d:
        return struct.unpack(">d", bytes.fromhex(d[FLOAT_KEY]))[0]
    return d

def decode(line):
    return json.loads(line, object_hook=_hook)

def handle(req):
    if req["op"] == "dumps":
        return [json.dumps(v, sort_keys=True, indent=2) for v in req["values"]]
    if req["op"] == "timestamps":
        return [str(EPOCH + timedelta(milliseconds=ms)) for ms in req["ms"]]
    raise ValueError("unknown op %r" % req["op"])
`

const floatBits = (n: number): string => {
  const view = new DataView(new ArrayBuffer(8))
  view.setFloat64(0, n)
  return Array.from(new Uint8Array(view.buffer), (b) => b.toString(16).padStart(2, "0")).join("")
}

/** JSON text for Python's `json.loads`, with the number typing described above. */
const toPython = (value: unknown): string => {
  if (value === null || value === undefined) return "null"
  if (typeof value === "boolean") return String(value)
  if (typeof value === "bigint") return value.toString()
  if (typeof value === "number") {
    return Number.isSafeInteger(value) ? String(value) : `{${JSON.stringify(FLOAT_KEY)}:"${floatBits(value)}"}`
  }
  // JSON.stringify escapes lone surrogates as \udXXX, which json.loads keeps as lone surrogates.
  if (typeof value === "string") return JSON.stringify(value)
  if (Array.isArray(value)) return "[" + value.map(toPython).join(",") + "]"
  if (typeof value === "object") {
    const record = value as Record<string, unknown>
    const keys = Object.keys(record).filter((k) => record[k] !== undefined)
    return "{" + keys.map((k) => JSON.stringify(k) + ":" + toPython(record[k])).join(",") + "}"
  }
  throw new TypeError(`cannot send ${typeof value} to python`)
}

let python: PythonServer
beforeAll(() => {
  python = startPythonServer(pythonSource)
})
afterAll(() => python.close())

const pythonDumps = (values: ReadonlyArray<unknown>) =>
  Effect.promise(async () => {
    const answer = await python.request(`{"op":"dumps","values":[${values.map(toPython).join(",")}]}`)
    return answer as ReadonlyArray<string>
  })

const pythonTimestamps = (ms: ReadonlyArray<number>) =>
  Effect.promise(async () => (await python.request(JSON.stringify({ op: "timestamps", ms }))) as ReadonlyArray<string>)

/** Every fixed value goes to Python in one request; each result is checked separately. */
const expectSameAsPython = (cases: ReadonlyArray<readonly [string, unknown]>) =>
  Effect.gen(function* () {
    const expected = yield* pythonDumps(cases.map(([, value]) => value))
    expect(expected).toHaveLength(cases.length)
    cases.forEach(([name, value], i) => {
      expect(pythonJsonDumps(value), name).toBe(expected[i])
    })
  })

const allControls = Array.from({ length: 0x20 }, (_, i) => String.fromCharCode(i)).join("") + "\u007f"

const metadata: BackupMetadata = {
  version: "1.0.0",
  backup_id: "0b4c2ab6-4f0d-4a1b-9a35-7a0c1a1a2b3c",
  volume_id: "c9a1f7e2-3b5d-4e8f-a1b2-c3d4e5f6a7b8",
  backup_name: "nightly \"é\" 日本 😀",
  backup_description: null,
  created_at: "2026-11-26 04:04:46.123000+00:00",
  parent_id: null,
  volume_meta: JSON.stringify({ "volume-base-metadata": { a: 1 }, version: 2 }),
  objects: [
    {
      "volume_c9a1f7e2/20261126040446/az_nova_backup_0b4c2ab6-00001": {
        compression: "zlib",
        length: 1048576,
        md5: "0123456789abcdef0123456789abcdef",
        offset: 0
      }
    },
    {
      "volume_c9a1f7e2/20261126040446/az_nova_backup_0b4c2ab6-00002": {
        compression: null,
        length: 4096,
        md5: "fedcba9876543210fedcba9876543210",
        offset: 1048576
      }
    }
  ],
  extra_metadata: { nested: { list: [1, 0.5, [], {}], flag: true, nothing: null } }
}

const emptyMetadata: BackupMetadata = {
  version: "1.0.0",
  backup_id: "b",
  volume_id: "v",
  backup_name: null,
  backup_description: "",
  created_at: "2026-11-26 04:04:46+00:00",
  parent_id: "p",
  volume_meta: null,
  objects: []
}

const sha256File: Sha256File = {
  version: "1.0.0",
  backup_id: "0b4c2ab6-4f0d-4a1b-9a35-7a0c1a1a2b3c",
  volume_id: "c9a1f7e2-3b5d-4e8f-a1b2-c3d4e5f6a7b8",
  backup_name: null,
  backup_description: "weekly",
  created_at: "2026-11-26 04:04:46+00:00",
  chunk_size: 32768,
  sha256s: ["e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "00".repeat(32)]
}

describe("pythonJsonDumps matches json.dumps(sort_keys=True, indent=2)", () => {
  it.effect("scalars and numbers", () =>
    expectSameAsPython([
      ["null", null],
      ["true", true],
      ["false", false],
      ["0", 0],
      ["-0 (a JS int)", -0],
      ["1", 1],
      ["-1", -1],
      ["42", 42],
      ["max safe", Number.MAX_SAFE_INTEGER],
      ["min safe", Number.MIN_SAFE_INTEGER],
      ["2^53 (a float)", 2 ** 53],
      ["-2^53 - 2 (a float)", -(2 ** 53) - 2],
      ["1e15 + 0.5", 1e15 + 0.5],
      ["0.5", 0.5],
      ["-2.5", -2.5],
      ["0.1", 0.1],
      ["1/3", 1 / 3],
      ["2/3", 2 / 3],
      ["123.456", 123.456],
      ["0.0001", 1e-4],
      ["1e-05", 1e-5],
      ["1.5e-07", 1.5e-7],
      ["1.5e+16", 1.5e16],
      ["1e+16", 1e16],
      ["9999999999999998.0", 9999999999999998],
      ["1e+21", 1e21],
      ["1e+22", 1e22],
      ["1.2345678901234568e+20", 123456789012345680000],
      ["min subnormal", Number.MIN_VALUE],
      ["max double", Number.MAX_VALUE],
      ["epsilon", Number.EPSILON],
      ["-1e-300", -1e-300],
      ["NaN", NaN],
      ["Infinity", Infinity],
      ["-Infinity", -Infinity],
      ["bigint", 12345678901234567890123n],
      ["negative bigint", -98765432109876543210n]
    ]))

  it.effect("strings", () =>
    expectSameAsPython([
      ["empty", ""],
      ["plain", "plain text 123 ~"],
      ["quotes and backslashes", 'say "hi" \\ back\\slash \\"'],
      ["slash is not escaped", "a/b</script>"],
      ["all control characters and DEL", allControls],
      ["\\b\\f\\n\\r\\t", "\b\f\n\r\t"],
      ["latin-1", "é à ü ß \u0080 \u00a0 \u00ff"],
      ["CJK", "日本語の文字列 中文 한국어"],
      ["emoji", "😀👍🏽🇩🇪"],
      ["last code point", "a\u{10FFFF}b"],
      ["first astral", "\u{10000}"],
      ["BMP edges", "\ud7ff\ue000\ufeff\ufffe\uffff"],
      ["line and paragraph separators", "\u2028\u2029"],
      ["lone high surrogate", "x\ud800y"],
      ["lone low surrogate", "\udc00"],
      ["reversed pair", "\udc00\ud800"]
    ]))

  it.effect("objects and arrays", () =>
    expectSameAsPython([
      ["empty object", {}],
      ["empty array", []],
      ["nested empties", { a: {}, b: [], c: [[], {}, [[]]] }],
      ["array of scalars", [1, "two", 3.5, null, true, false]],
      ["nested", { z: { y: { x: [1, { w: [] }] } }, a: [[1, 2], [3]] }],
      ["unsorted keys", { b: 1, a: 2, c: 3, B: 4, A: 5, _: 6, "": 7, "10": 8, "9": 9 }],
      ["prefix keys", { ab: 1, a: 2, abc: 3, "a\u0000": 4 }],
      [
        "keys by code point, not UTF-16 unit",
        { "\uffff": 1, "\u{1F600}": 2, "\ue000": 3, "\ud7ff": 4, "\u{10000}": 5, "\u{10FFFF}": 6, z: 7 }
      ],
      ["astral key prefix", { "😀": 1, "😀a": 2, "\uffffz": 3, "\uffff": 4 }],
      ["lone surrogate keys", { "\ud800": 1, "\u{10000}": 2, "\udfff": 3, "\uffff": 4 }],
      ["escaped keys", { 'k"ey': 1, "k\\ey": 2, "k\ney": 3, "é": 4, "\u0000": 5 }],
      ["undefined values are dropped", { a: 1, b: undefined, c: [null] }],
      ["deep", [[[[[[[[[["deep"]]]]]]]]]]]
    ]))

  it.effect("the documents, byte for byte as encodeDocument writes them", () =>
    Effect.gen(function* () {
      const documents = [metadata, emptyMetadata, sha256File] as const
      const expected = yield* pythonDumps(documents)
      documents.forEach((document, i) => {
        const bytes = encodeDocument(document)
        const pythonBytes = new TextEncoder().encode(expected[i])
        expect(Buffer.from(bytes).equals(Buffer.from(pythonBytes)), `document ${i}`).toBe(true)
        if ("sha256s" in document) {
          const fast = encodeSha256File(document, document.sha256s.length, (j) => document.sha256s[j]!)
          expect(Buffer.from(fast).equals(Buffer.from(pythonBytes))).toBe(true)
        }
        // json.dumps' default ensure_ascii: the documents are pure ASCII.
        expect(bytes.every((b) => b < 0x80)).toBe(true)
      })
    }))

  it.prop(
    "encodeSha256File writes the bytes encodeDocument writes, for any names and lists",
    [
      fc.record({
        backup_name: fc.option(fc.string({ unit: fc.constantFrom('"', "\\", "\n", "é", "😀", "a", "sha256s", "[", "]") })),
        backup_description: fc.option(fc.string()),
        chunk_size: fc.integer({ min: 1, max: 1 << 30 }),
        sha256s: fc.oneof(
          fc.array(fc.stringMatching(/^[0-9a-f]{64}$/), { maxLength: 50 }),
          fc.array(fc.oneof(fc.stringMatching(/^[0-9a-f]{0,64}$/), fc.string()), { maxLength: 5 })
        )
      })
    ],
    ([fields]) => {
      const document: Sha256File = { ...sha256File, ...fields }
      const fast = encodeSha256File(document, document.sha256s.length, (i) => document.sha256s[i]!)
      expect(Buffer.from(fast).equals(Buffer.from(encodeDocument(document)))).toBe(true)
    },
    { fastCheck: { numRuns: 300 } }
  )

  it.prop(
    "a backup's digest list (bytes, in parts set in any order) writes the sha256 file encodeDocument writes of its hex",
    [fc.integer({ min: 1, max: 7 }), fc.array(fc.uint8Array({ minLength: 32, maxLength: 32 }), { maxLength: 40 })],
    ([perPart, blocks]) => {
      const list = makeDigestList(perPart)
      // Parts set in reverse, as slots can finish in any order.
      for (let at = Math.floor((blocks.length - 1) / perPart) * perPart; at >= 0; at -= perPart) list.set(at / perPart, Buffer.concat(blocks.slice(at, at + perPart)))
      const document: Sha256File = { ...sha256File, sha256s: blocks.map((digest) => Buffer.from(digest).toString("hex")) }
      const fast = encodeSha256File(document, list.count(), list.hexAt, list.writeItems)
      expect(Buffer.from(fast).equals(Buffer.from(encodeDocument(document)))).toBe(true)
    },
    { fastCheck: { numRuns: 200 } }
  )

  const key = fc.oneof(
    fc.string({ unit: "binary", maxLength: 4 }),
    fc.string({ unit: "grapheme-ascii", maxLength: 4 }),
    fc.constantFrom("\uffff", "\u{1F600}", "\ue000", "\ud800", "\udfff", "a", "é")
  )
  // Any UTF-16 unit, so lone and reversed surrogates appear too.
  const anyUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c))
  const text = fc.oneof(
    fc.string({ unit: "binary" }),
    fc.string({ unit: "binary-ascii" }),
    fc.string({ unit: anyUnit }),
    fc.string({ unit: fc.constantFrom('"', "\\", "\n", "\u0000", "\u007f", "\u2028", "😀", "\uffff", "é") })
  )
  const number = fc.oneof(
    fc.integer(),
    fc.maxSafeInteger(),
    fc.double(),
    fc.double({ min: -1e20, max: 1e20 }),
    fc.double({ min: -1e-3, max: 1e-3 }),
    fc.integer({ min: -400, max: 400 }).map((e) => Number(`1.5e${e}`)),
    fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n })
  )
  const { value: jsonLike } = fc.letrec<{ value: unknown }>((tie) => ({
    value: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      fc.constantFrom(null, true, false),
      number,
      text,
      fc.array(tie("value"), { maxLength: 5 }),
      fc.dictionary(key, tie("value"), { maxKeys: 5 })
    )
  }))

  it.effect.prop(
    "random JSON-like values",
    [jsonLike],
    ([value]) =>
      Effect.gen(function* () {
        const [expected] = yield* pythonDumps([value])
        expect(pythonJsonDumps(value)).toBe(expected)
      }),
    { fastCheck: { numRuns: 500 } }
  )
})

describe("cinderTimestamp matches str(aware UTC datetime)", () => {
  const fixed = [
    "2026-11-26T04:04:46Z",
    "2026-11-26T04:04:46.123Z",
    "2026-11-26T04:04:46.001Z",
    "2026-11-26T04:04:46.999Z",
    "2026-11-26T04:04:46.100Z",
    "1970-01-01T00:00:00Z",
    "1969-12-31T23:59:59.999Z",
    "1999-12-31T23:59:59.500Z",
    "2000-02-29T12:00:00Z",
    "0001-01-01T00:00:00Z",
    "0999-06-15T08:30:00.250Z",
    "9999-12-31T23:59:59.999Z"
  ].map((iso) => new Date(iso).getTime())

  it.effect("fixed instants, with and without milliseconds", () =>
    Effect.gen(function* () {
      const expected = yield* pythonTimestamps(fixed)
      fixed.forEach((ms, i) => expect(cinderTimestamp(new Date(ms)), new Date(ms).toISOString()).toBe(expected[i]))
      expect(expected[0]).toBe("2026-11-26 04:04:46+00:00")
      expect(expected[1]).toBe("2026-11-26 04:04:46.123000+00:00")
    }))

  const instant = fc.oneof(
    fc.integer({ min: new Date("0001-01-01T00:00:00Z").getTime(), max: new Date("9999-12-31T23:59:59.999Z").getTime() }),
    // whole seconds, which print without a fraction
    fc.integer({ min: -62135596800, max: 253402300799 }).map((s) => s * 1000)
  )

  it.effect.prop(
    "random instants in datetime's range",
    [fc.array(instant, { minLength: 1, maxLength: 20 })],
    ([instants]) =>
      Effect.gen(function* () {
        const expected = yield* pythonTimestamps(instants)
        instants.forEach((ms, i) => expect(cinderTimestamp(new Date(ms))).toBe(expected[i]))
      }),
    { fastCheck: { numRuns: 200 } }
  )
})
