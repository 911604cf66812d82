/**
 * A backup from a Stream and a restore to a Stream, with progress consumed
 * as a Stream beside each: an Effect program over the library's services.
 * It builds its layers, runs, and closes them; the process then exits by
 * itself (the codec pool's workers end with their layer).
 *
 *   node stream-backup.js [store-directory]
 */
import { NodeFileSystem } from "@effect/platform-node"
import { Chunk, Console, Effect, Layer, Stream } from "effect"
import { createHash } from "node:crypto"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { backup, layerCodecPool, layerMemoryCatalog, layerPosix, progressStream, restoreStream, streamSource } from "chunked-backup"

const MiB = 1024 * 1024

/** 24 MiB of volume in 1 MiB chunks, as if it came over the network: runs of zeros and of pseudo-random bytes. */
const volumeChunks = Stream.range(0, 23).pipe(
  Stream.map((i) => {
    const chunk = new Uint8Array(MiB)
    if (i % 3 !== 0) for (let j = 0; j < MiB; j++) chunk[j] = (i * 7919 + j * 104729) % 251
    return chunk
  })
)

const sha256 = (chunks: Chunk.Chunk<Uint8Array>) => {
  const hash = createHash("sha256")
  for (const chunk of chunks) hash.update(chunk)
  return hash.digest("hex")
}

const program = Effect.gen(function* () {
  // Back up the stream (its size declared up front: it goes into the record), progress beside it.
  const progress = yield* progressStream({ progressEveryObjects: 1 })
  const source = yield* streamSource(volumeChunks, 24 * MiB, "generated volume")
  const [record] = yield* Effect.all(
    [
      backup({ id: crypto.randomUUID(), volume_id: "example-volume" }, source, { chunkSize: 4 * MiB, compression: "zstd", ...progress.options }),
      Stream.runForEach(progress.events, (e) => Console.error(`backup ${e.percent.toFixed(0)} % (${e.objects} objects)`))
    ],
    { concurrency: 2 }
  )
  yield* Console.log(`backed up ${record.id}: ${record.object_count} objects for ${record.volume_size_bytes} bytes`)

  // Restore it as a Stream of bytes in volume order, progress beside it again.
  const restoring = yield* progressStream()
  const [restored] = yield* Effect.all(
    [
      Stream.runCollect(restoreStream(record.id, restoring.options)),
      Stream.runForEach(restoring.events, (e) => Console.error(`restore ${e.percent.toFixed(0)} %`))
    ],
    { concurrency: 2 }
  )
  const original = sha256(yield* Stream.runCollect(volumeChunks))
  const same = sha256(restored) === original
  yield* Console.log(same ? `restored ${record.id}: the same ${24 * MiB} bytes (sha256 ${original.slice(0, 16)}…)` : "restored bytes differ")
  if (!same) return yield* Effect.fail(new Error("restored bytes differ"))
}).pipe(Effect.scoped)

const root = process.argv[2] ?? mkdtempSync(join(tmpdir(), "chunked-backup-example-"))
const services = Layer.mergeAll(layerPosix({ root }), layerMemoryCatalog(), layerCodecPool()).pipe(Layer.provideMerge(NodeFileSystem.layer))

Effect.runPromise(program.pipe(Effect.provide(services))).catch((error) => {
  console.error(error)
  process.exitCode = 3
})
