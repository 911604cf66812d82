/**
 * Encode and decode the on-store documents. Encoding is byte-identical to
 * Cinder's; decoding validates with Schema and turns anything malformed into
 * an `InvalidBackup` that names the object.
 */
import { Effect, Either, ParseResult, Schema } from "effect"
import { BackupMetadata, Sha256File } from "../domain/documents.js"
import { InvalidBackup } from "../domain/errors.js"
import { pythonJsonDumps } from "./pythonJson.js"

const utf8 = new TextEncoder()

export const encodeDocument = (document: BackupMetadata | Sha256File): Uint8Array =>
  utf8.encode(pythonJsonDumps(document))

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

const decodeDocument = <A, I>(schema: Schema.Schema<A, I>, what: string) => {
  const decode = Schema.decodeUnknownEither(schema, { onExcessProperty: "preserve" })
  return (backupId: string, object: string, bytes: Uint8Array): Effect.Effect<A, InvalidBackup> => {
    const fail = (reason: string) => Effect.fail(new InvalidBackup({ backupId, object, reason }))
    let json: unknown
    try {
      json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes))
    } catch (e) {
      return fail(`${what} is not valid UTF-8 JSON: ${e instanceof Error ? e.message : String(e)}`)
    }
    return Either.match(decode(json), {
      onLeft: (error) => fail(`${what} is malformed: ${ParseResult.TreeFormatter.formatErrorSync(error)}`),
      onRight: Effect.succeed
    })
  }
}

export const decodeMetadata = decodeDocument(BackupMetadata, "metadata")
export const decodeSha256File = decodeDocument(Sha256File, "sha256 file")
