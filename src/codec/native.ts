/**
 * Loads the project's addons (native/*.c, built by `npm install`): bzip2 and
 * the allocator setting. The path differs between running from src/ (tests),
 * dist/src/ (library) and dist/ (the bundled CLI).
 */
import { existsSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

/** native/bz2.c; `stop` (shared memory) set to non-zero by another thread makes the work give up at its next 1 MiB step. */
export interface Bz2Binding {
  readonly compress: (data: Uint8Array, level: number, stop?: Int32Array) => Promise<Buffer>
  readonly decompress: (data: Uint8Array, sizeHint: number, stop?: Int32Array) => Promise<Buffer>
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

const loadAddon = <A>(name: string): A => {
  const path = packageFile(join("native", "build", "Release", `${name}.node`))
  if (path === undefined) throw new Error(`the ${name} addon is not built: run \`npm install\` (needs libbz2-dev and a C compiler)`)
  return createRequire(import.meta.url)(path) as A
}

let binding: Bz2Binding | undefined

export const bz2 = (): Bz2Binding => (binding ??= loadAddon<Bz2Binding>("bz2"))

/**
 * Keeps blocks of `bytes` and more in their own mappings, returned to the
 * system when freed (native/malloc.c says why). For a process that runs
 * backups, such as the CLI; glibc only, false where it does nothing.
 */
export const fixMmapThreshold = (bytes: number): boolean =>
  loadAddon<{ readonly fixMmapThreshold: (bytes: number) => boolean }>("malloc").fixMmapThreshold(bytes)
