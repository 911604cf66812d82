/**
 * The posix store's directory fsyncs: what makes a rename durable, shared
 * by the puts that finish together.
 */
import { constants } from "node:fs"
import { open } from "node:fs/promises"

/** fsync of a directory: what makes the renames done in it durable. */
const fsyncDirectory = async (dir: string) => {
  const directory = await open(dir, constants.O_RDONLY)
  try {
    await directory.sync()
  } finally {
    await directory.close()
  }
}

/**
 * Directory fsyncs shared by the puts that finish together (a group
 * commit): a put after its rename waits for the next fsync of its directory
 * that has not started yet, or schedules one after the running one (which
 * may have started before the rename). At 4 ms a file and directory fsync
 * pair here, one per object was most of a small object's put.
 */
export const sharedDirectorySyncs = (fsync: (dir: string) => Promise<void> = fsyncDirectory) => {
  const next = new Map<string, Promise<void>>()
  const running = new Map<string, Promise<void>>()
  return (dir: string): Promise<void> => {
    const scheduled = next.get(dir)
    if (scheduled !== undefined) return scheduled
    const sync = (running.get(dir) ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => {
        next.delete(dir)
        const run = fsync(dir)
        running.set(dir, run)
        return run.finally(() => {
          if (running.get(dir) === run) running.delete(dir)
        })
      })
    next.set(dir, sync)
    return sync
  }
}
