/**
 * Compression names as Cinder accepts them. The metadata records the name the
 * user configured (lower-cased), so aliases must survive a round trip.
 */
import { Either } from "effect"
import { InvalidRequest } from "./errors.js"

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

export const compressionNames: ReadonlyArray<string> = Object.keys(aliases)

/** The algorithm behind a name of any case, or undefined when Cinder would refuse it. */
export const algorithmOf = (name: string): Algorithm | undefined => aliases[name.toLowerCase()]

/** A configured compression: the name written to metadata and the algorithm that runs. */
export interface Compression {
  readonly name: string
  readonly algorithm: Algorithm
}

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
