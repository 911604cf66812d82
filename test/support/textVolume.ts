/**
 * Volumes and store checks for the CLI tests: text that compressors work
 * hard on, and what a posix store directory holds.
 */
import { closeSync, openSync, readdirSync, readSync, statSync } from "node:fs"

/** Compressible but varied text: bzip2 works hard on it. */
export const textVolume = (bytes: number, seed = 7) => {
  const words = ["alpha", "block", "cinder", "delta", "extent", "frame", "glance", "hash", "inode", "journal", "kernel", "ledger"]
  const out = Buffer.alloc(bytes)
  let x = seed
  let offset = 0
  while (offset < bytes) {
    x = (x * 1103515245 + 12345) >>> 0
    offset += out.write(words[x % words.length]! + (x % 7 === 0 ? "\n" : " "), offset)
  }
  return out
}

/** The names of the files under `dir` (a posix store's objects). */
export const objectsIn = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true, recursive: true }).filter((e) => e.isFile()).map((e) => e.name)

/** Whether the file at `path` is `size` bytes: `text`, then zeros (read a piece at a time, not whole). */
export const sameAsTextThenZeros = (path: string, text: Uint8Array, size: number) => {
  if (statSync(path).size !== size) return false
  const fd = openSync(path, "r")
  try {
    const piece = Buffer.alloc(64 * 1024 * 1024)
    for (let at = 0; at < size; at += piece.length) {
      const read = readSync(fd, piece, 0, Math.min(piece.length, size - at), at)
      const expected = Buffer.alloc(read)
      if (at < text.length) expected.set(text.subarray(at, at + read))
      if (!piece.subarray(0, read).equals(expected)) return false
    }
    return true
  } finally {
    closeSync(fd)
  }
}
