/**
 * Compression names as Cinder accepts them. The metadata records the name the
 * user configured (lower-cased), so aliases must survive a round trip.
 */
import { Either } from "effect"
import { InvalidRequest } from "./errors.js"

/** A compression algorithm as stored in a backup's metadata. */
export type Algorithm = "none" | "zlib" | "bz2" | "zstd"

const aliases: Readonly<Record<string, Algorithm>> = {
  none: "none",
  off: "none",
  no: "none",
  zlib: "zlib",
  gzip: "zlib",
  bz2: "bz2",
  bzip2: "bz2",
  zstd: "zstd"
}

/** Every compression name Cinder accepts (none, off, no, zlib, gzip, bz2, bzip2, zstd), in lower case. */
export const compressionNames: ReadonlyArray<string> = Object.keys(aliases)

/** The algorithm behind a name of any case, or undefined when Cinder would refuse it. */
export const algorithmOf = (name: string): Algorithm | undefined => aliases[name.toLowerCase()]

/** A configured compression: the name written to metadata and the algorithm that runs. */
export interface Compression {
  readonly name: string
  readonly algorithm: Algorithm
}

/** A compression name as Cinder reads it, in any case: its algorithm, or InvalidRequest naming the accepted ones. */
export const parseCompression = (name: string): Either.Either<Compression, InvalidRequest> => {
  const algorithm = algorithmOf(name)
  return algorithm === undefined
    ? Either.left(
        new InvalidRequest({
          reason: `unsupported compression algorithm: ${name} (one of ${compressionNames.join(", ")})`
        })
      )
    : Either.right({ name: name.toLowerCase(), algorithm })
}
