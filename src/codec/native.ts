/**
 * Loads the project's bzip2 addon (native/bz2.c, built by `npm install`).
 * The path differs between running from src/ (tests) and dist/src/ (CLI).
 */
import { existsSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

export interface Bz2Binding {
  readonly compress: (data: Uint8Array, level: number) => Promise<Buffer>
  readonly decompress: (data: Uint8Array, sizeHint: number) => Promise<Buffer>
}

const findAddon = (): string => {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, "native", "build", "Release", "bz2.node")
    if (existsSync(candidate)) return candidate
    dir = dirname(dir)
  }
  throw new Error("bzip2 addon not built: run `npm install` (needs libbz2-dev and a C compiler)")
}

let binding: Bz2Binding | undefined

export const bz2 = (): Bz2Binding => (binding ??= createRequire(import.meta.url)(findAddon()) as Bz2Binding)
