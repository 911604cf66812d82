/**
 * decodeSha256Digests scans the list from bytes and parses only the rest;
 * it must agree with decodeSha256File (which parses the whole document) on
 * every input: the same header and digests, or the same error.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, FastCheck as fc } from "effect"
import type { Sha256File } from "../../src/domain/documents.js"
import { decodeSha256File, encodeDocument } from "../../src/format/documents.js"
import { decodeSha256Digests } from "../../src/format/sha256Digests.js"

const utf8 = new TextEncoder()

/** Both decoders' answers as plain values: the digests as hex, an error as its message. */
const both = (bytes: Uint8Array) => {
  const general = Effect.runSync(Effect.either(decodeSha256File("b", "o", bytes)))
  const fast = Effect.runSync(Effect.either(decodeSha256Digests("b", "o", bytes)))
  return {
    general: Either.match(general, {
      onLeft: (e) => ({ error: e.message }),
      onRight: ({ sha256s, ...header }) => ({ header, count: sha256s.length, hex: sha256s.join("") })
    }),
    fast: Either.match(fast, {
      onLeft: (e) => ({ error: e.message }),
      onRight: ({ digests, count, ...header }) => ({ header, count, hex: Buffer.from(digests).toString("hex") })
    })
  }
}

const hex64 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString("hex"))
const document = fc.record({
  version: fc.constant("1.0.0"),
  backup_id: fc.uuid(),
  volume_id: fc.uuid(),
  backup_name: fc.option(fc.string({ unit: fc.constantFrom('"', "\\", "a", "sha256s", "[", "]", ":", ",", "{", "é") })),
  backup_description: fc.option(fc.string()),
  created_at: fc.constant("2026-11-26 04:04:46+00:00"),
  chunk_size: fc.integer({ min: 1, max: 1 << 20 }),
  sha256s: fc.array(hex64, { maxLength: 30 })
}) satisfies fc.Arbitrary<Sha256File>

/** Damage of the kinds a store or an attacker could make to the text. */
const damage = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant("cut" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), text: fc.constantFrom('"', ",", "]", "[", "\\u0061", " ", "\n", '"sha256s": [],', "{", "}", "A", "0") }),
  fc.record({ kind: fc.constant("replace" as const), from: fc.constantFrom('"sha256s"', "[", '", "', "a", '"chunk_size"', "\n  "), to: fc.constantFrom('"sha256s"', "[[", '","', "\\u0061", "A", '"x"', "", "\t") })
)

type Damage = typeof damage extends fc.Arbitrary<infer T> ? T : never

const apply = (text: string, d: Damage) => {
  switch (d.kind) {
    case "flip": {
      const bytes = Buffer.from(text)
      if (bytes.length > 0) bytes[d.at % bytes.length] = d.byte
      return new Uint8Array(bytes)
    }
    case "cut":
      return utf8.encode(text.slice(0, d.at % (text.length + 1)))
    case "insert": {
      const at = d.at % (text.length + 1)
      return utf8.encode(text.slice(0, at) + d.text + text.slice(at))
    }
    default:
      return utf8.encode(text.replace(d.from, d.to))
  }
}

describe("decodeSha256Digests", () => {
  it.prop("agrees with decodeSha256File on the documents Cinder and we write", [document], ([doc]) => {
    const { general, fast } = both(encodeDocument(doc))
    expect(fast).toEqual(general)
    expect(fast).toMatchObject({ count: doc.sha256s.length, hex: doc.sha256s.join("") })
  }, { fastCheck: { numRuns: 300 } })

  it.prop("agrees with decodeSha256File on damaged documents, error messages included", [document, fc.array(damage, { minLength: 1, maxLength: 3 })], ([doc, damages]) => {
    let bytes: Uint8Array = encodeDocument(doc)
    for (const d of damages) bytes = apply(new TextDecoder().decode(bytes), d)
    const { general, fast } = both(bytes)
    expect(fast).toEqual(general)
  }, { fastCheck: { numRuns: 1500 } })

  it("takes other spacing, the list anywhere among the keys, and an empty list", () => {
    const digest = "ab".repeat(32)
    const texts = [
      `{"sha256s":["${digest}","${digest}"],"backup_id":"b","volume_id":"v","version":"1.0.0","backup_name":null,"backup_description":null,"created_at":"x","chunk_size":4}`,
      `{ "version" : "1.0.0" , "backup_id":"b","volume_id":"v","backup_name":"] [","backup_description":null,"created_at":"x","chunk_size":4,\r\n"sha256s"\t:\t[ "${digest}" ] }`,
      `{"version":"1.0.0","backup_id":"b","volume_id":"v","backup_name":null,"backup_description":null,"created_at":"x","chunk_size":4,"sha256s":[]}`
    ]
    for (const text of texts) {
      const { general, fast } = both(utf8.encode(text))
      expect(general).not.toHaveProperty("error")
      expect(fast).toEqual(general)
    }
  })

  it("gives the last of two lists, as JSON.parse does, and the general path's error for an escaped digit", () => {
    const [a, b] = ["ab".repeat(32), "cd".repeat(32)]
    const head = `"version":"1.0.0","backup_id":"b","volume_id":"v","backup_name":null,"backup_description":null,"created_at":"x","chunk_size":4`
    const twice = both(utf8.encode(`{"sha256s":["${a}"],${head},"sha256s":["${b}"]}`))
    expect(twice.fast).toEqual(twice.general)
    expect(twice.fast).toMatchObject({ hex: b })
    const escaped = both(utf8.encode(`{${head},"sha256s":["\\u0061${"b".repeat(63)}", "${"A".repeat(64)}"]}`))
    expect(escaped.fast).toEqual(escaped.general)
    expect(escaped.fast).toEqual({ error: expect.stringContaining("sha256s[1] is not 64 lower-case hex digits") })
  })
})
