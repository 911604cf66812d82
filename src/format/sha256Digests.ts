/**
 * The sha256 file with its list as bytes, 32 per block. The list is nearly
 * all of the document (262,144 digests for an 8 GiB volume at 32 KiB), and
 * as JSON strings it cost a parse, a check and ~20 MB of heap per backup.
 * Here the list is scanned straight from the document's bytes and only the
 * rest is parsed as JSON. A document the scan does not take as plain (an
 * escape in the list, the key twice, anything odd) goes through
 * `decodeSha256File` itself, so the two agree on every input, damaged ones
 * included: same result, same error.
 */
import { Effect, Either, Schema } from "effect"
import { nativeHex } from "../codec/native.js"
import { Sha256File } from "../domain/documents.js"
import type { InvalidBackup } from "../domain/errors.js"
import { decodeSha256File } from "./documents.js"
import { MAX_DOCUMENT_DEPTH, nestsDeeperThan } from "./untrusted.js"

/** A `_sha256file` with its `sha256s` as bytes. */
export interface Sha256Digests extends Omit<Sha256File, "sha256s"> {
  /** how many blocks the list has */
  readonly count: number
  /** the list's digests, 32 bytes each, in order */
  readonly digests: Uint8Array
}

const QUOTE = 0x22
const COMMA = 0x2c
const COLON = 0x3a

const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09

const skipSpace = (bytes: Uint8Array, at: number) => {
  while (at < bytes.length && isSpace(bytes[at]!)) at++
  return at
}

/** Past the string that opens at `at`, or -1. */
const pastString = (bytes: Uint8Array, at: number) => {
  for (at++; at < bytes.length; at++) {
    const c = bytes[at]!
    if (c === 0x5c) at++
    else if (c === QUOTE) return at + 1
  }
  return -1
}

/** Past the value that starts at `at` (tokens only: JSON.parse judges the rest), or -1. */
const pastValue = (bytes: Uint8Array, at: number) => {
  let depth = 0
  while (at < bytes.length) {
    const c = bytes[at]!
    if (c === QUOTE) {
      at = pastString(bytes, at)
      if (at === -1 || depth === 0) return at
      continue
    }
    if (c === 0x5b || c === 0x7b) depth++
    else if (c === 0x5d || c === 0x7d) {
      if (depth === 0) return at
      if (--depth === 0) return at + 1
    } else if (depth === 0 && (c === COMMA || isSpace(c))) return at
    at++
  }
  return depth === 0 ? at : -1
}

/** The list that opens at `at` when it is plain strings of 64 lower-case hex digits: its end and digests (native/hex.c). */
const scanList = (bytes: Uint8Array, at: number) => {
  // Each item takes at least 66 bytes ('"' + 64 digits + '"'), so this holds them all.
  const digests = new Uint8Array((Math.floor((bytes.length - at) / 66) + 1) * 32)
  const list = nativeHex().scanHexList(bytes, at, digests)
  return list === null ? undefined : { end: list.end, count: list.count, digests: digests.subarray(0, list.count * 32) }
}

/** Where the top-level `sha256s` list is, when the document is an object that has it once, plain. */
const findList = (bytes: Uint8Array) => {
  let at = skipSpace(bytes, 0)
  if (bytes[at] !== 0x7b) return undefined
  at = skipSpace(bytes, at + 1)
  let found: { start: number; end: number; count: number; digests: Uint8Array } | undefined
  while (bytes[at] === QUOTE) {
    const keyEnd = pastString(bytes, at)
    if (keyEnd === -1) return undefined
    const isList = keyEnd - at === 9 && Buffer.from(bytes.buffer, bytes.byteOffset + at, 9).toString("latin1") === '"sha256s"'
    at = skipSpace(bytes, keyEnd)
    if (bytes[at] !== COLON) return undefined
    at = skipSpace(bytes, at + 1)
    if (isList) {
      if (found !== undefined || bytes[at] !== 0x5b) return undefined
      const list = scanList(bytes, at)
      if (list === undefined) return undefined
      found = { start: at, ...list }
      at = list.end
    } else {
      at = pastValue(bytes, at)
      if (at === -1) return undefined
    }
    at = skipSpace(bytes, at)
    if (bytes[at] !== COMMA) break
    at = skipSpace(bytes, at + 1)
  }
  return bytes[at] === 0x7d ? found : undefined
}

const decodeHeader = Schema.decodeUnknownEither(Sha256File.omit("sha256s"), { onExcessProperty: "preserve" })
const utf8 = new TextDecoder("utf-8", { fatal: true })

/** The header of a document whose list was found plain, or undefined when it is not what Cinder writes. */
const plainHeader = (bytes: Uint8Array, list: { start: number; end: number }) => {
  try {
    // The cuts are at ASCII brackets, so each side is valid UTF-8 when the whole is.
    const text = utf8.decode(bytes.subarray(0, list.start)) + "[]" + utf8.decode(bytes.subarray(list.end))
    if (nestsDeeperThan(text, MAX_DOCUMENT_DEPTH)) return undefined
    const json = JSON.parse(text) as unknown
    const header = Either.getOrUndefined(decodeHeader(json))
    if (header === undefined) return undefined
    const { sha256s: _list, ...rest } = header as typeof header & { sha256s?: unknown }
    return rest
  } catch {
    return undefined
  }
}

/** Parses and checks a `_sha256file` document (untrusted input), giving its list as bytes. */
export const decodeSha256Digests = (backupId: string, object: string, bytes: Uint8Array): Effect.Effect<Sha256Digests, InvalidBackup> => {
  const list = findList(bytes)
  const header = list === undefined ? undefined : plainHeader(bytes, list)
  if (list !== undefined && header !== undefined) return Effect.succeed({ ...header, count: list.count, digests: list.digests })
  return Effect.map(decodeSha256File(backupId, object, bytes), ({ sha256s, ...rest }) => {
    const digests = Buffer.allocUnsafe(sha256s.length * 32)
    sha256s.forEach((hex, i) => digests.write(hex, i * 32, "hex"))
    return { ...rest, count: sha256s.length, digests }
  })
}
