/**
 * Loads the project's addons (native/*.c, built by `npm install`): bzip2,
 * zlib (libdeflate where built with it), md5 in SIMD lanes, hex digest lists,
 * data extents and the allocator setting, once for the main thread and the
 * codec workers alike. The path differs between running from src/ (tests),
 * dist/src/ (library) and dist/ (the bundled CLI).
 */
import { existsSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

/**
 * native/bz2.c. `stop` (shared memory) set to non-zero by another thread
 * makes the work give up at its next 1 MiB step; each step's bytes are added
 * to `done[0]` (input when compressing, output when decompressing).
 */
export interface Bz2Binding {
  readonly compress: (data: Uint8Array, level: number, stop?: Int32Array, done?: BigInt64Array) => Promise<Buffer>
  readonly decompress: (data: Uint8Array, maxLength: number, stop?: Int32Array, done?: BigInt64Array) => Promise<Buffer>
}

/** native/zlib.c: inflate into a caller's buffer; deflate only where built with libdeflate. */
export interface ZlibBinding {
  readonly inflateInto: (data: Uint8Array, target: Uint8Array) => number
  readonly deflate?: (data: Uint8Array, level: number) => Buffer
  readonly implementation: "libdeflate" | "zlib"
}

/** native/md5.c: the md5s of several buffers side by side, 16 bytes each. */
export interface Md5Binding {
  readonly md5Many: (views: ReadonlyArray<Uint8Array>) => Buffer
  readonly lanes: number
}

/** A file of the package, by its path from the package root, found from src/, dist/src/ or dist/. */
export const packageFile = (relative: string): string | undefined => {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, relative)
    if (existsSync(candidate)) return candidate
    dir = dirname(dir)
  }
  return undefined
}

const loaded = new Map<string, unknown>()

const loadAddon = <A>(name: string): A => {
  if (loaded.has(name)) return loaded.get(name) as A
  const path = packageFile(join("native", "build", "Release", `${name}.node`))
  if (path === undefined) throw new Error(`the ${name} addon is not built: run \`npm install\` (needs libbz2-dev and a C compiler)`)
  const addon = createRequire(import.meta.url)(path) as A
  loaded.set(name, addon)
  return addon
}

export const bz2 = (): Bz2Binding => loadAddon<Bz2Binding>("bz2")
export const nativeZlib = (): ZlibBinding => loadAddon<ZlibBinding>("zlib")
export const nativeMd5 = (): Md5Binding => loadAddon<Md5Binding>("md5")

/** native/hex.c: the sha256 file's list of hex digests, read and written without a JS loop per byte. */
export interface HexBinding {
  /** The plain list opening at bytes[at] ('['), its digests into `out`; null when it is not plain. */
  readonly scanHexList: (bytes: Uint8Array, at: number, out: Uint8Array) => { readonly end: number; readonly count: number } | null
  /** `digests` as list items ('\n    "hex"', comma-joined, a comma first unless `first`) at out[at]; the position after. */
  readonly writeHexItems: (digests: Uint8Array, out: Uint8Array, at: number, first: boolean) => number
}

export const nativeHex = (): HexBinding => loadAddon<HexBinding>("hex")

/**
 * native/copy.c: target[at ..] = source[start, end) by memcpy. For copies
 * into shared memory (a slot), where TypedArray.prototype.set goes byte by
 * byte unless source and target are aligned alike.
 */
export const copyInto = (target: Uint8Array, at: number, source: Uint8Array, start: number, end: number): void =>
  loadAddon<{ readonly copyInto: typeof copyInto }>("copy").copyInto(target, at, source, start, end)

/** native/extents.c: the [start, end) pairs of an open file's data, flat; holes left out. */
export const dataExtents = (fd: number, size: number): ReadonlyArray<number> =>
  loadAddon<{ readonly dataExtents: (fd: number, size: number) => ReadonlyArray<number> }>("extents").dataExtents(fd, size)

/**
 * Keeps blocks of `bytes` and more in their own mappings, returned to the
 * system when freed (native/malloc.c says why). For a process that runs
 * backups, such as the CLI; glibc only, false where it does nothing.
 */
export const fixMmapThreshold = (bytes: number): boolean =>
  loadAddon<{ readonly fixMmapThreshold: (bytes: number) => boolean }>("malloc").fixMmapThreshold(bytes)
