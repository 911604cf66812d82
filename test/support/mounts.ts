/**
 * Small filesystems for the full-disk tests: a tmpfs of a few MiB mounted
 * on a temporary directory and unmounted when the scope closes. Mounting
 * needs root; where it is refused, `smallFilesystem` gives undefined (the
 * tests skip and say so), except under CI=true, where CI runs as root and a
 * refusal fails the run.
 */
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const tryMount = (sizeMiB: number): string | undefined => {
  const dir = mkdtempSync(join(tmpdir(), "cb-small-fs-"))
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${sizeMiB}m`, "tmpfs", dir], { stdio: ["ignore", "ignore", "pipe"] })
    return dir
  } catch (error) {
    rmSync(dir, { recursive: true, force: true })
    if (process.env.CI === "true") throw new Error(`CI=true but mounting a tmpfs was refused: ${String(error)}`)
    return undefined
  }
}

/** Whether this machine lets the tests mount (checked once, with a mount of its own). */
export const canMount: boolean = (() => {
  const dir = tryMount(1)
  if (dir === undefined) return false
  execFileSync("umount", [dir])
  rmSync(dir, { recursive: true, force: true })
  return true
})()

export const MOUNT_SKIP_REASON = "mounting a tmpfs is refused here (not root?): the full-disk tests need it"

/** A tmpfs of `sizeMiB` MiB for the scope. */
export const smallFilesystem = (sizeMiB: number) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const dir = tryMount(sizeMiB)
      if (dir === undefined) throw new Error(MOUNT_SKIP_REASON)
      return dir
    }),
    (dir) =>
      Effect.sync(() => {
        execFileSync("umount", ["-l", dir])
        rmSync(dir, { recursive: true, force: true })
      })
  )
