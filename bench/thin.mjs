/**
 * The thin-volume and NBD rows of the benchmark (issue 15):
 *   - a full zstd backup of a 32 × sparse file holding base.img's data at
 *     its start (its holes, base.img's own included, are holes), by us and
 *     by Cinder;
 *   - a full zstd backup of base.img through qemu-nbd (raw);
 *   - an incremental of 1 % changed of big.img as a qcow2 overlay through
 *     qemu-nbd: with the dirty bitmap, and reading every byte.
 * Run from bench/run.mjs, which passes its measuring helpers in `ctx`.
 */
import { spawn, spawnSync } from "node:child_process"
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readSync, rmSync, writeSync } from "node:fs"
import { join } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"

const MiB = 2 ** 20
export const SPARSE_FACTOR = 32

const run = (cmd, args) => {
  const r = spawnSync(cmd, args, { encoding: "utf8" })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: exit ${r.status}: ${r.stderr}`)
  return r.stdout
}

/**
 * A file SPARSE_FACTOR × as large as `base`, holding its bytes at the start
 * (base.img's own holes kept as holes: 1 MiB parts of zeros are not
 * written), the rest a hole: a grown thin volume.
 */
const ensureSparse = (path, base, size, log) => {
  if (existsSync(path)) return
  log(`thin.img: ${SPARSE_FACTOR} × ${size / MiB} MiB, holding base.img's data`)
  const buffer = Buffer.alloc(MiB)
  const input = openSync(base, "r")
  const output = openSync(`${path}.part`, "w")
  ftruncateSync(output, size * SPARSE_FACTOR)
  for (let at = 0; at < size; at += MiB) {
    const n = readSync(input, buffer, 0, MiB, at)
    const bytes = buffer.subarray(0, n)
    if (!bytes.every((byte) => byte === 0)) writeSync(output, bytes, 0, n, at)
  }
  closeSync(input)
  closeSync(output)
  run("mv", [`${path}.part`, path])
}

/** qemu-nbd serving `image` read-only on a Unix socket until `stop`. */
const serve = async (image, format, socket, extra = []) => {
  rmSync(socket, { force: true })
  const child = spawn("qemu-nbd", ["--read-only", "--persistent", "-f", format, "-k", socket, ...extra, image], { stdio: ["ignore", "ignore", "pipe"] })
  let stderr = ""
  child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d))
  for (let i = 0; i < 200 && !existsSync(socket); i++) {
    if (child.exitCode !== null) break
    await sleep(50)
  }
  if (!existsSync(socket)) throw new Error(`qemu-nbd did not start: ${stderr}`)
  return {
    uri: `nbd+unix:///?socket=${socket}`,
    stop: async () => {
      if (child.exitCode === null) {
        child.kill("SIGTERM")
        await new Promise((resolve) => child.once("exit", resolve))
      }
      rmSync(socket, { force: true })
    }
  }
}

/** 1 % of `size` in 1 MiB writes at seeded offsets, written through qemu-io (so the bitmap records them). */
const writeChanges = (image, size) => {
  let x = 12345
  const commands = []
  const count = Math.round((size * 0.01) / MiB)
  for (let i = 0; i < count; i++) {
    // Math.imul: a plain product passes 2^53 and the sequence degenerates (to 23 distinct offsets).
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    const offset = (x % (size / MiB)) * MiB
    commands.push("-c", `write -P 0x${(0x10 + (i % 200)).toString(16)} ${offset} 1M`)
  }
  run("qemu-io", ["-f", "qcow2", ...commands, image])
  return count
}

/**
 * The rows' measurements, into ctx.M: thinFull, cinderThinFull, nbdFull,
 * nbdBitmapIncremental, nbdFullReadIncremental.
 */
export const thinSections = async (ctx) => {
  const { M, runs, dataDir, base, size, big, measure, repeat, warm, cli, backupArgs, log, section, reps, cinder } = ctx
  const hasQemu = spawnSync("qemu-nbd", ["--version"], { stdio: "ignore" }).status === 0
  const sparse = join(dataDir, `thin-${SPARSE_FACTOR}x-grown.img`)

  await section("thinFull", async () => {
    ensureSparse(sparse, base, size, log)
    log(`ours: full backup, zstd, of the ${SPARSE_FACTOR} × sparse file`)
    M.thinFull = await repeat(reps, async (rep) => {
      const repo = join(runs, `ours-thin-${rep}`)
      const r = await measure(...cli(repo, "backup", sparse, ...backupArgs("zstd")))
      rmSync(repo, { recursive: true, force: true })
      return r
    })
  })

  if (cinder) {
    await section("cinderThinFull", async () => {
      ensureSparse(sparse, base, size, log)
      log(`Cinder: full backup, zstd, of the ${SPARSE_FACTOR} × sparse file`)
      const store = join(runs, "cinder-thin")
      mkdirSync(store, { recursive: true })
      const gib = Math.ceil((size * SPARSE_FACTOR) / 2 ** 30)
      M.cinderThinFull = await repeat(1, () => cinder.backup("cinder-thin", store, sparse, "zstd", gib))
      rmSync(store, { recursive: true, force: true })
    })
  }

  if (!hasQemu) {
    log("qemu-nbd is not installed: the NBD rows are skipped")
    return
  }

  await section("nbdFull", async () => {
    log("ours: full backup, zstd, of base.img through qemu-nbd")
    const server = await serve(base, "raw", join(runs, "nbd-base.sock"))
    try {
      M.nbdFull = await repeat(reps, async (rep) => {
        const repo = join(runs, `ours-nbd-${rep}`)
        warm(base)
        const r = await measure(...cli(repo, "backup", server.uri, ...backupArgs("zstd")))
        rmSync(repo, { recursive: true, force: true })
        return r
      })
    } finally {
      await server.stop()
    }
  })

  if (!big) return
  await section("nbdBitmapIncremental", async () => {
    // big.img as a qcow2 (kept with the data), and an overlay per run that takes the writes and the bitmap.
    const qcow2 = join(dataDir, "big.qcow2")
    if (!existsSync(qcow2)) {
      log("big.qcow2 from big.img")
      run("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", big.path, `${qcow2}.part`])
      run("mv", [`${qcow2}.part`, qcow2])
    }
    const overlay = join(runs, "overlay.qcow2")
    rmSync(overlay, { force: true })
    run("qemu-img", ["create", "-q", "-f", "qcow2", "-b", qcow2, "-F", "qcow2", overlay])
    run("qemu-img", ["bitmap", "--add", overlay, "since-full"])
    const repo = join(runs, "ours-nbd-chain")
    const socket = join(runs, "nbd-big.sock")
    log(`ours: full backup of the ${(big.size / 2 ** 30).toFixed(0)} GiB qcow2 through qemu-nbd (the parent)`)
    let server = await serve(overlay, "qcow2", socket)
    const full = JSON.parse((await measure(...cli(repo, "backup", server.uri, ...backupArgs("zstd")))).stdout)
    await server.stop()
    const writes = writeChanges(overlay, big.size)
    log(`${writes} writes of 1 MiB through qemu-io; incrementals through qemu-nbd -B since-full`)
    server = await serve(overlay, "qcow2", socket, ["-B", "since-full"])
    try {
      const incremental = (extra) => async () => {
        const r = await measure(...cli(repo, "backup", server.uri, "--parent", full.id, ...extra, ...backupArgs("zstd")))
        return { ...r, extra: { objects: JSON.parse(r.stdout).object_count } }
      }
      M.nbdBitmapIncremental = await repeat(reps, incremental(["--dirty-bitmap", "since-full"]))
      M.nbdFullReadIncremental = await repeat(reps, incremental([]))
      const [a, b] = [M.nbdBitmapIncremental.runs[0].objects, M.nbdFullReadIncremental.runs[0].objects]
      if (a !== b) throw new Error(`the bitmap incremental has ${a} objects, the full-read one ${b}`)
    } finally {
      await server.stop()
      rmSync(repo, { recursive: true, force: true })
      rmSync(overlay, { force: true })
    }
  })
}

/** The rows and targets of these measurements. */
export const thinTargets = (M, { size, target, na, times }) => {
  const seconds = (m) => `${m.seconds.toFixed(2)} s`
  if (M.thinFull && M.oursFullZstd) {
    const r = M.thinFull.seconds / M.oursFullZstd.seconds
    target(`full backup, zstd, ${SPARSE_FACTOR} × sparse file: vs the dense image's`, "≤ 2×", times(r), r <= 2, `${seconds(M.thinFull)} vs ${seconds(M.oursFullZstd)}`)
  } else na(`full backup, zstd, ${SPARSE_FACTOR} × sparse file: vs the dense image's`, "≤ 2×", "not measured")
  if (M.thinFull && M.cinderThinFull) {
    const r = M.cinderThinFull.seconds / M.thinFull.seconds
    target(`full backup, zstd, ${SPARSE_FACTOR} × sparse file: faster than Cinder`, "≥ 20×", times(r), r >= 20, `${seconds(M.thinFull)} vs Cinder ${seconds(M.cinderThinFull)}`)
  } else na(`full backup, zstd, ${SPARSE_FACTOR} × sparse file: faster than Cinder`, "≥ 20×", "not measured")
  if (M.nbdFull && M.oursFullZstd) {
    const r = M.oursFullZstd.seconds / M.nbdFull.seconds
    target("full backup, zstd, through qemu-nbd: throughput vs from the file", "≥ 0.8×", times(r), r >= 0.8, `${seconds(M.nbdFull)} vs ${seconds(M.oursFullZstd)} (${((size / M.nbdFull.seconds) / 1e6).toFixed(0)} MB/s)`)
  } else na("full backup, zstd, through qemu-nbd: throughput vs from the file", "≥ 0.8×", "not measured")
  if (M.nbdBitmapIncremental && M.nbdFullReadIncremental) {
    const r = M.nbdBitmapIncremental.seconds / M.nbdFullReadIncremental.seconds
    target("incremental, 1 % of a qcow2 through qemu-nbd: dirty bitmap vs reading every byte", "≤ 0.15×", times(r), r <= 0.15, `${seconds(M.nbdBitmapIncremental)} vs ${seconds(M.nbdFullReadIncremental)}`)
  } else na("incremental, 1 % of a qcow2 through qemu-nbd: dirty bitmap vs reading every byte", "≤ 0.15×", "not measured")
}
