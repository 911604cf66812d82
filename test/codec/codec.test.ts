/**
 * The codecs against Python's own modules, as Cinder calls them, in both
 * directions: Debian's `/usr/bin/python3` with zlib, bz2 and python3-zstd.
 *
 * One Python co-process serves the whole file. Large fixtures travel as temp
 * files; the property test's small inputs travel as base64.
 */
import { afterAll, beforeAll, describe, expect, it, layer } from "@effect/vitest"
import { Effect, Either, FastCheck as fc } from "effect"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { compressObject, decompressObject, openObject, prepareObject } from "../../src/codec/codec.js"
import { makeSlotPool } from "../../src/codec/slots.js"
import { parseCompression, type Algorithm, type Compression } from "../../src/domain/compression.js"
import { startPythonServer, type PythonServer } from "../support/debianPython.js"
import { sharedCodecPool } from "../support/layers.js"

type Codec = Exclude<Algorithm, "none">
const codecs: ReadonlyArray<Codec> = ["zlib", "bz2", "zstd"]

/** Every name Cinder accepts for each algorithm, in several cases. */
const aliases: Readonly<Record<Codec, ReadonlyArray<string>>> = {
  zlib: ["zlib", "gzip", "ZLIB", "Gzip"],
  bz2: ["bz2", "bzip2", "BZ2", "BZip2"],
  zstd: ["zstd", "ZSTD", "Zstd"]
}
const passthroughNames = ["none", "off", "no", "NONE", "Off", "No"]

const pythonSource = `
import base64, bz2, zlib, zstd

# Exactly Cinder's calls: the module's compress(data) with its defaults
# (zlib level -1 = 6, bz2 level 9, zstd level 3).
COMPRESS = {
    "zlib": lambda d: zlib.compress(d),
    "bz2": lambda d: bz2.compress(d),
    "bz2_9": lambda d: bz2.compress(d, 9),
    "zstd": lambda d: zstd.compress(d),
}
DECOMPRESS = {"zlib": zlib.decompress, "bz2": bz2.decompress, "zstd": zstd.decompress}

def read(path):
    with open(path, "rb") as f:
        return f.read()

def write(path, data):
    with open(path, "wb") as f:
        f.write(data)

def attempt(fn):
    try:
        fn()
        return None
    except Exception as e:
        return "%s: %s" % (type(e).__name__, e)

def handle(req):
    op = req["op"]
    if op == "compress":
        for item in req["items"]:
            write(item["dst"], COMPRESS[item["alg"]](read(item["src"])))
        return len(req["items"])
    if op == "decompress":
        return [attempt(lambda: write(item["dst"], DECOMPRESS[item["alg"]](read(item["src"])))) for item in req["items"]]
    if op == "decompress_b64":
        out = []
        for item in req["items"]:
            try:
                out.append({"ok": base64.b64encode(DECOMPRESS[item["alg"]](base64.b64decode(item["data"]))).decode()})
            except Exception as e:
                out.append({"error": "%s: %s" % (type(e).__name__, e)})
        return out
    raise ValueError("unknown op %r" % op)
`

// ---------------------------------------------------------------------------
// fixtures

/** mulberry32: deterministic "random" bytes, so failures reproduce. */
const randomBytes = (length: number, seed: number): Uint8Array => {
  const out = new Uint8Array(length)
  let a = seed >>> 0
  for (let i = 0; i < length; i++) {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    out[i] = ((t ^ (t >>> 14)) >>> 0) & 0xff
  }
  return out
}

const textBytes = (length: number): Uint8Array => {
  const lines: Array<string> = []
  let size = 0
  for (let i = 0; size < length; i++) {
    const line = `line ${String(i).padStart(6, "0")}: the quick brown fox jumps over the lazy dog, é 日本 ${i * 7919}\n`
    lines.push(line)
    size += Buffer.byteLength(line)
  }
  return new Uint8Array(Buffer.from(lines.join("")).subarray(0, length))
}

/** ~1 MiB of 4 KiB blocks cycling through random, zeros, text and a byte ramp. */
const mixedBytes = (length: number): Uint8Array => {
  const out = new Uint8Array(length)
  const text = textBytes(4096)
  for (let block = 0; block * 4096 < length; block++) {
    const start = block * 4096
    const end = Math.min(start + 4096, length)
    switch (block % 4) {
      case 0:
        out.set(randomBytes(end - start, block + 1), start)
        break
      case 1:
        break // zeros
      case 2:
        out.set(text.subarray(0, end - start), start)
        break
      default:
        for (let i = start; i < end; i++) out[i] = i & 0xff
    }
  }
  return out
}

const inputs: ReadonlyArray<{ readonly name: string; readonly data: Uint8Array; readonly compressible: boolean }> = [
  { name: "random-64k", data: randomBytes(64 * 1024, 42), compressible: false },
  { name: "zeros-256k", data: new Uint8Array(256 * 1024), compressible: true },
  { name: "text-100k", data: textBytes(100 * 1000), compressible: true },
  { name: "mixed-1m", data: mixedBytes(1024 * 1024 + 123), compressible: true },
  { name: "zeros-100", data: new Uint8Array(100), compressible: true },
  { name: "one-byte", data: new Uint8Array([0x61]), compressible: false }
]

const compressionOf = (name: string): Compression =>
  Either.getOrThrowWith(parseCompression(name), (e) => new Error(e.reason))

const asBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

const expectSameBytes = (actual: Uint8Array, expected: Uint8Array, what: string) => {
  expect(actual.length, `${what}: length`).toBe(expected.length)
  const a = asBuffer(actual)
  const b = asBuffer(expected)
  if (!a.equals(b)) {
    let i = 0
    while (a[i] === b[i]) i++
    expect.fail(`${what}: first difference at byte ${i} (${a[i]} vs ${b[i]})`)
  }
}

let dir: string
let python: PythonServer
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "codec-test-"))
  for (const input of inputs) writeFileSync(join(dir, input.name), input.data)
  python = startPythonServer(pythonSource)
})
afterAll(async () => {
  await python.close()
  rmSync(dir, { recursive: true, force: true })
})

const ask = <A>(request: unknown) => Effect.promise(async () => (await python.request(JSON.stringify(request))) as A)

interface Transfer {
  readonly alg: string
  readonly src: string
  readonly dst: string
}

/** Python-decompresses each item's bytes; resolves with null (success, result in dst) or the error. */
const pythonDecompressB64 = (items: ReadonlyArray<{ readonly alg: Codec; readonly data: Uint8Array }>) =>
  ask<ReadonlyArray<{ ok?: string; error?: string }>>({
    op: "decompress_b64",
    items: items.map(({ alg, data }) => ({ alg, data: asBuffer(data).toString("base64") }))
  })

// ---------------------------------------------------------------------------

layer(sharedCodecPool)("Python compresses, decompressObject restores", (it) => {
  it.effect("every input, every algorithm, under every alias", () =>
    Effect.scoped(Effect.gen(function* () {
      const items: Array<Transfer & { readonly input: (typeof inputs)[number]; readonly codec: Codec }> = []
      for (const input of inputs) {
        for (const codec of codecs) {
          items.push({ input, codec, alg: codec, src: join(dir, input.name), dst: join(dir, `${input.name}.py.${codec}`) })
        }
      }
      yield* ask({ op: "compress", items: items.map(({ alg, src, dst }) => ({ alg, src, dst })) })
      const slots = yield* makeSlotPool(Math.max(...inputs.map((i) => i.data.length)), 1)
      const slot = yield* slots.take
      for (const { input, codec, dst } of items) {
        const compressed = new Uint8Array(readFileSync(dst))
        for (const name of aliases[codec]) {
          const restored = yield* decompressObject(name, compressed, input.data.length, `${input.name}-${name}`)
          expectSameBytes(restored, input.data, `${input.name} compressed by python ${codec}, read as ${name}`)
        }
        // The restore path: a codec worker, into a slot (zlib by libdeflate when built with it).
        const opened = yield* openObject(codec, Uint8Array.from(compressed), input.data.length, input.name, slot)
        expectSameBytes(opened.bytes, input.data, `${input.name} compressed by python ${codec}, opened in a worker`)
      }
    })))

  it.effect("concatenated bz2 streams, as Python's bz2.decompress accepts them", () =>
    Effect.gen(function* () {
      const parts = ["text-100k", "zeros-100"] as const
      yield* ask({
        op: "compress",
        items: parts.map((name) => ({ alg: "bz2", src: join(dir, name), dst: join(dir, `${name}.cat.bz2`) }))
      })
      const joined = Buffer.concat(parts.map((name) => readFileSync(join(dir, `${name}.cat.bz2`))))
      const expected = Buffer.concat(parts.map((name) => readFileSync(join(dir, name))))
      const restored = yield* decompressObject("bz2", joined, expected.length, "cat")
      expectSameBytes(restored, expected, "two bz2 streams")
    }))

  it.effect("none, off, no (any case) and a null name pass the bytes through untouched", () =>
    Effect.gen(function* () {
      for (const input of inputs) {
        for (const name of [...passthroughNames, null]) {
          const out = yield* decompressObject(name, input.data, input.data.length, input.name)
          expect(out, `${input.name} as ${name}`).toBe(input.data)
        }
      }
    }))
})

layer(sharedCodecPool)("compressObject output, Python decompresses", (it) => {
  it.effect("every compressible input, every algorithm; bz2 is byte-identical to bz2.compress(data, 9)", () =>
    Effect.gen(function* () {
      const ours: Array<{ readonly input: (typeof inputs)[number]; readonly codec: Codec; readonly file: string }> = []
      for (const input of inputs.filter((i) => i.compressible)) {
        for (const codec of codecs) {
          const result = yield* compressObject({ name: codec, algorithm: codec }, input.data)
          expect(result.algorithm, `${input.name} ${codec}`).toBe(codec)
          expect(result.bytes.length).toBeLessThan(input.data.length)
          const file = join(dir, `${input.name}.ours.${codec}`)
          writeFileSync(file, result.bytes)
          ours.push({ input, codec, file })
          // The backup path: a codec worker (zlib by libdeflate when built with it).
          const prepared = yield* prepareObject({ name: codec, algorithm: codec }, Uint8Array.from(input.data))
          expect(prepared.algorithm, `${input.name} ${codec} in a worker`).toBe(codec)
          writeFileSync(`${file}.worker`, prepared.bytes)
          ours.push({ input, codec, file: `${file}.worker` })
        }
      }
      const errors = yield* ask<ReadonlyArray<string | null>>({
        op: "decompress",
        items: ours.map(({ codec, file }) => ({ alg: codec, src: file, dst: `${file}.out` }))
      })
      ours.forEach(({ input, codec, file }, i) => {
        expect(errors[i], `python ${codec} decompressing ${input.name}`).toBeNull()
        expectSameBytes(readFileSync(`${file}.out`), input.data, `${input.name} via our ${codec}`)
      })

      // Same libbz2, same parameters: the very same bytes as Cinder writes.
      const bz2Inputs = inputs.filter((i) => i.compressible)
      yield* ask({
        op: "compress",
        items: bz2Inputs.map((input) => ({ alg: "bz2_9", src: join(dir, input.name), dst: join(dir, `${input.name}.py9.bz2`) }))
      })
      for (const input of bz2Inputs) {
        expectSameBytes(
          readFileSync(join(dir, `${input.name}.ours.bz2`)),
          readFileSync(join(dir, `${input.name}.py9.bz2`)),
          `bz2 of ${input.name}`
        )
      }
    }))

  it.effect("records the configured name, lower-cased, when compression shrinks the data", () =>
    Effect.gen(function* () {
      const data = inputs.find((i) => i.name === "text-100k")!.data
      for (const codec of codecs) {
        for (const name of aliases[codec]) {
          const compression = compressionOf(name)
          expect(compression).toEqual({ name: name.toLowerCase(), algorithm: codec })
          const result = yield* compressObject(compression, data)
          expect(result.algorithm).toBe(name.toLowerCase())
          const restored = yield* decompressObject(result.algorithm, result.bytes, data.length, name)
          expectSameBytes(restored, data, `text via ${name}`)
        }
      }
    }))

  it.effect("stores incompressible data raw as \"none\"", () =>
    Effect.gen(function* () {
      const samples = [
        inputs.find((i) => i.name === "random-64k")!.data,
        randomBytes(1024 * 1024, 7),
        new Uint8Array([0x61]),
        new Uint8Array(0)
      ]
      for (const data of samples) {
        for (const name of [...codecs.flatMap((c) => aliases[c]), ...passthroughNames]) {
          const result = yield* compressObject(compressionOf(name), data)
          expect(result.algorithm, `${data.length} bytes with ${name}`).toBe("none")
          expect(result.bytes).toBe(data)
        }
      }
    }))

  // Cinder: bz2.compress(b"") is 14 bytes, not smaller, so the object is stored raw.
  it.effect("stores an empty object raw as \"none\" with bz2", () =>
    Effect.gen(function* () {
      const data = new Uint8Array(0)
      const result = yield* compressObject(compressionOf("bz2"), data)
      expect(result.algorithm).toBe("none")
      expect(result.bytes).toBe(data)
    }))
})

describe("decompressObject failures are CompressionErrors", () => {
  it.effect("an unknown name", () =>
    Effect.gen(function* () {
      const data = new Uint8Array([1, 2, 3])
      for (const name of ["lzma", "gz", "zstd2", "", "null", "deflate", "snappy"]) {
        const error = yield* Effect.flip(decompressObject(name, data, 3, "obj-unknown"))
        expect(error._tag).toBe("CompressionError")
        expect(error.algorithm).toBe(name)
        expect(error.object).toBe("obj-unknown")
        expect(error.message).toContain("obj-unknown")
      }
    }))

  it.effect("corrupt data, which Python rejects as well", () =>
    Effect.gen(function* () {
      const data = inputs.find((i) => i.name === "text-100k")!.data
      const cases: Array<{ readonly codec: Codec; readonly what: string; readonly bytes: Uint8Array }> = []
      for (const codec of codecs) {
        const good = (yield* compressObject({ name: codec, algorithm: codec }, data)).bytes
        const flipped = (at: number) => {
          const copy = new Uint8Array(good)
          copy[at] = copy[at]! ^ 0xff
          return copy
        }
        cases.push(
          { codec, what: "garbage", bytes: new TextEncoder().encode("this is not compressed data at all, honestly") },
          { codec, what: "truncated", bytes: good.subarray(0, Math.floor(good.length / 2)) },
          { codec, what: "last byte cut", bytes: good.subarray(0, good.length - 1) },
          { codec, what: "bad magic", bytes: flipped(0) }
        )
        // zlib and bz2 checksum their content, so a flipped byte in the middle is caught
        // (zstd frames carry no checksum, neither ours nor python-zstd's: see below).
        if (codec !== "zstd") cases.push({ codec, what: "flipped middle byte", bytes: flipped(Math.floor(good.length / 2)) })
      }
      cases.push({ codec: "zlib", what: "empty", bytes: new Uint8Array(0) })
      const pythonResults = yield* pythonDecompressB64(cases.map(({ codec, bytes }) => ({ alg: codec, data: bytes })))
      for (const [i, { codec, what, bytes }] of cases.entries()) {
        expect(pythonResults[i]?.error, `python ${codec} on ${what}`).toBeDefined()
        for (const name of aliases[codec]) {
          const error = yield* Effect.flip(decompressObject(name, bytes, data.length, `obj-${codec}-${what}`))
          expect(error._tag, `${name} on ${what}`).toBe("CompressionError")
          expect(error.algorithm).toBe(name)
          expect(error.object).toBe(`obj-${codec}-${what}`)
          expect(error.reason).toMatch(/^decompression failed: /)
        }
      }
    }))

  // Empty input is where the two sides disagree, in opposite directions. Cinder
  // never writes an empty compressed object (every compressor's output for an
  // empty chunk is longer than 0 bytes, so it is stored as "none"), and restore
  // checks the length and md5 of what decompressObject returns.
  it.effect("empty input: bz2 and zstd differ from Python, harmlessly", () =>
    Effect.gen(function* () {
      const empty = new Uint8Array(0)
      const [bz2Python, zstdPython] = yield* pythonDecompressB64([
        { alg: "bz2", data: empty },
        { alg: "zstd", data: empty }
      ])
      // bz2.decompress(b"") == b"", while we refuse it.
      expect(bz2Python).toEqual({ ok: "" })
      const bz2Error = yield* Effect.flip(decompressObject("bz2", empty, 100, "empty-bz2"))
      expect(bz2Error._tag).toBe("CompressionError")
      // zstd.decompress(b"") raises, while we return no bytes (not the 100 expected).
      expect(zstdPython?.error).toMatch(/zstd|Error/)
      const zstdOut = yield* Effect.either(decompressObject("zstd", empty, 100, "empty-zstd"))
      if (zstdOut._tag === "Left") expect(zstdOut.left._tag).toBe("CompressionError")
      else expect(zstdOut.right.length).not.toBe(100)
    }))

  it.effect("zstd has no checksum: a flipped byte fails or yields different bytes, as in Python", () =>
    Effect.gen(function* () {
      const data = inputs.find((i) => i.name === "text-100k")!.data
      const good = (yield* compressObject({ name: "zstd", algorithm: "zstd" }, data)).bytes
      for (const at of [Math.floor(good.length / 3), Math.floor(good.length / 2), good.length - 10]) {
        const bad = new Uint8Array(good)
        bad[at] = bad[at]! ^ 0x55
        const ours = yield* Effect.either(decompressObject("zstd", bad, data.length, "flip"))
        if (ours._tag === "Left") expect(ours.left._tag).toBe("CompressionError")
        else expect(asBuffer(ours.right).equals(asBuffer(data))).toBe(false)
        const [theirs] = yield* pythonDecompressB64([{ alg: "zstd", data: bad }])
        if (theirs?.ok !== undefined) expect(Buffer.from(theirs.ok, "base64").equals(asBuffer(data))).toBe(false)
      }
    }))
})

describe("round trip property", () => {
  const byte = fc.integer({ min: 0, max: 255 })
  const segment = fc.oneof(
    fc.uint8Array({ maxLength: 2048 }),
    fc.integer({ min: 1, max: 8192 }).map((n) => new Uint8Array(n)), // zero runs
    fc.tuple(byte, fc.integer({ min: 1, max: 4096 })).map(([b, n]) => new Uint8Array(n).fill(b)),
    fc.constantFrom(textBytes(3000), textBytes(700))
  )
  const bytes = fc.array(segment, { maxLength: 6 }).map((parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
    let at = 0
    for (const part of parts) {
      out.set(part, at)
      at += part.length
    }
    return out
  })
  const name = fc.constantFrom(...codecs.flatMap((c) => aliases[c]), ...passthroughNames)
  const sample = fc.record({ data: bytes, name })

  it.effect.prop(
    "decompressObject(compressObject(x)) == x, and Python agrees",
    [sample],
    ([{ data, name }]) =>
      Effect.gen(function* () {
        const compression = compressionOf(name)
        const result = yield* compressObject(compression, data)
        if (compression.algorithm === "none" || result.bytes.length >= data.length) {
          expect(result.algorithm).toBe("none")
          expect(result.bytes).toBe(data)
        } else {
          expect(result.algorithm).toBe(compression.name)
        }
        const restored = yield* decompressObject(result.algorithm, result.bytes, data.length, "prop")
        expectSameBytes(restored, data, `${name} round trip`)
        if (result.algorithm !== "none") {
          const [fromPython] = yield* pythonDecompressB64([{ alg: compression.algorithm as Codec, data: result.bytes }])
          expect(fromPython?.error).toBeUndefined()
          expectSameBytes(Buffer.from(fromPython?.ok ?? "", "base64"), data, `python ${compression.algorithm}`)
        }
      }),
    { fastCheck: { numRuns: 300 } }
  )
})
