/**
 * Encode and decode the on-store documents. Encoding is byte-identical to
 * Cinder's; decoding validates with Schema and turns anything malformed into
 * an `InvalidBackup` that names the object.
 */
import { Effect, Either, ParseResult, Schema } from "effect"
import { BackupMetadata, Sha256File } from "../domain/documents.js"
import { InvalidBackup } from "../domain/errors.js"
import { pythonJsonDumps } from "./pythonJson.js"
import { clip, MAX_DOCUMENT_DEPTH, nestsDeeperThan } from "./untrusted.js"

const utf8 = new TextEncoder()

/** A document as the bytes Cinder writes: Python's json.dumps output, byte for byte. */
export const encodeDocument = (document: BackupMetadata | Sha256File): Uint8Array =>
  utf8.encode(pythonJsonDumps(document))

const HEX = /^[0-9a-f]*$/
const EMPTY_LIST = '\n  "sha256s": []'

/**
 * The sha256 file, the same bytes as `encodeDocument`, written straight into
 * one buffer from its `count` hex digests (`hexAt(i)`): the list is nearly
 * all of the file (19 MB for an 8 GiB volume at 32 KiB blocks), and building
 * it as strings first grew the heap by ~80 MB at the end of a backup. A list
 * with anything but lower-case hex (never ours) takes the general path.
 */
export const encodeSha256File = (
  header: Omit<Sha256File, "sha256s">,
  count: number,
  hexAt: (index: number) => string,
  /**
   * Writes all `count` items at `out[at]` ('\n    "' + 64 lower-case hex
   * digits + '"', joined by ","), returning the position after: given for a
   * backup's own list, whose digests are known to be hex, so the checking
   * pass is skipped and no string is made per digest
   */
  writeItems?: (out: Buffer, at: number) => number
): Uint8Array => {
  let itemsBytes = count * 72 - 1 // items are '\n    "' + hex + '"', joined by ","
  if (writeItems === undefined) {
    itemsBytes = -1
    for (let i = 0; i < count; i++) {
      const hex = hexAt(i)
      if (!HEX.test(hex)) return encodeDocument({ ...header, sha256s: Array.from({ length: count }, (_, j) => hexAt(j)) })
      itemsBytes += hex.length + 8
    }
  }
  if (count === 0) return encodeDocument({ ...header, sha256s: [] })
  // The rest of the document is ASCII (ensure_ascii), its list key at indent 2.
  const frame = pythonJsonDumps({ ...header, sha256s: [] })
  const at = frame.indexOf(EMPTY_LIST) + EMPTY_LIST.length - 1 // the "]"
  const head = frame.slice(0, at)
  const tail = frame.slice(at)
  const out = Buffer.allocUnsafe(head.length + itemsBytes + 3 + tail.length)
  let pos = out.write(head, 0, "latin1")
  if (writeItems !== undefined) pos = writeItems(out, pos)
  else {
    for (let i = 0; i < count; i++) pos += out.write(`${i > 0 ? "," : ""}\n    "${hexAt(i)}"`, pos, "latin1")
  }
  pos += out.write("\n  ", pos, "latin1")
  out.write(tail, pos, "latin1")
  return out
}

/**
 * Python's `str(datetime)` of an aware UTC datetime, as Cinder writes
 * `created_at`: `2026-11-26 04:04:46+00:00`, with `.ffffff` only when the
 * sub-second part is not zero.
 */
export const cinderTimestamp = (date: Date): string => {
  const iso = date.toISOString() // 2026-11-26T04:04:46.123Z
  const seconds = iso.slice(0, 19).replace("T", " ")
  const millis = date.getUTCMilliseconds()
  const fraction = millis === 0 ? "" : "." + String(millis).padStart(3, "0") + "000"
  return `${seconds}${fraction}+00:00`
}

const MD5 = /^[0-9a-f]{32}$/
const SHA256 = /^[0-9a-f]{64}$/
const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)
const isCount = (value: unknown): value is number => typeof value === "number" && Number.isSafeInteger(value) && value >= 0

/** Why objects[index] is not `{"<name>": {compression, length, md5, offset}}`, if it is not. */
const objectItemProblem = (item: unknown, index: number): string | undefined => {
  const at = `objects[${index}]`
  if (!isRecord(item)) return `${at} is not an object`
  const keys = Object.keys(item)
  if (keys.length !== 1) return `${at} has ${keys.length} keys; each objects[] item must have exactly one`
  const name = keys[0]!
  const entry = item[name]
  const which = `${at} (${JSON.stringify(clip(name, 80))})`
  if (!isRecord(entry)) return `${which} is not an object`
  if (!("compression" in entry) || !(entry.compression === null || typeof entry.compression === "string")) {
    return `${which}: compression must be a string or null`
  }
  if (!isCount(entry.length)) return `${which}: length must be a non-negative integer`
  if (!isCount(entry.offset)) return `${which}: offset must be a non-negative integer`
  if (typeof entry.md5 !== "string" || !MD5.test(entry.md5)) return `${which}: md5 must be 32 lower-case hex digits`
  return undefined
}

const sha256Problem = (item: unknown, index: number): string | undefined =>
  typeof item === "string" && SHA256.test(item) ? undefined : `sha256s[${index}] is not 64 lower-case hex digits`

/**
 * A decoder for one document: its small header through Schema, its list
 * (`listKey`, up to millions of items) by a plain loop, which takes a
 * fraction of Schema's time and memory on a long list.
 */
const decodeDocument = <A>(
  header: Schema.Schema<any, any>,
  listKey: string,
  itemProblem: (item: unknown, index: number) => string | undefined,
  what: string
) => {
  const decodeHeader = Schema.decodeUnknownEither(header, { onExcessProperty: "preserve" })
  return (backupId: string, object: string, bytes: Uint8Array): Effect.Effect<A, InvalidBackup> => {
    const fail = (reason: string) => Effect.fail(new InvalidBackup({ backupId, object, reason }))
    let json: unknown
    try {
      const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes)
      if (nestsDeeperThan(text, MAX_DOCUMENT_DEPTH)) return fail(`${what} is nested more than ${MAX_DOCUMENT_DEPTH} levels deep`)
      json = JSON.parse(text)
    } catch (e) {
      return fail(`${what} is not valid UTF-8 JSON: ${e instanceof Error ? e.message : String(e)}`)
    }
    if (!isRecord(json)) return fail(`${what} is not a JSON object`)
    const list = json[listKey]
    if (!Array.isArray(list)) return fail(`${what} is malformed: ${listKey} must be an array`)
    for (let i = 0; i < list.length; i++) {
      const problem = itemProblem(list[i], i)
      if (problem !== undefined) return fail(`${what} is malformed: ${problem}`)
    }
    return Either.match(decodeHeader(json), {
      onLeft: (error) => fail(`${what} is malformed: ${ParseResult.TreeFormatter.formatErrorSync(error)}`),
      onRight: (decoded) => Effect.succeed({ ...decoded, [listKey]: list } as A)
    })
  }
}

/** Parses and checks a `_metadata` document; untrusted input, so every field is validated. */
export const decodeMetadata = decodeDocument<BackupMetadata>(BackupMetadata.omit("objects"), "objects", objectItemProblem, "metadata")
/** Parses and checks a `_sha256file` document; untrusted input, so every field is validated. */
export const decodeSha256File = decodeDocument<Sha256File>(Sha256File.omit("sha256s"), "sha256s", sha256Problem, "sha256 file")
