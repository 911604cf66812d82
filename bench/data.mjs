/**
 * The benchmark's data, made deterministically in a work directory:
 *
 *   base.img     an ext4 image (mke2fs -d) of real files copied from /usr
 *                (sorted walk, stopped at a byte budget: ~40 % used, the rest
 *                zeros); fixed UUID, hash seed and clock, so the same machine
 *                state gives the same bytes
 *   edit01.img … edit10.img
 *                successive copies, each with ~1 % of its sha blocks changed
 *                (relative to the previous one) in scattered runs, from a
 *                seeded PRNG; edit01 is the "1 % changed" copy
 *   big.img      (optional) base.img's content repeated to 8 × its size, sparse
 *
 * manifest.json records the parameters, every image's sha256 and, per edit,
 * the exact sha blocks that differ from the previous image. A later run with
 * the same parameters and --work reuses the data.
 */
import { spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import {
  closeSync,
  copyFileSync,
  existsSync,
  ftruncateSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
  writeSync
} from "node:fs"
import { join } from "node:path"

export const DATA_VERSION = 2

/** Where the real files come from, and each root's share of the byte budget. */
const SOURCES = [
  { root: "/usr/lib/python3", label: "python3", share: 0.35 }, // source text
  { root: "/usr/share", label: "share", share: 0.35 }, // docs (.gz), data, locales, icons
  { root: "/usr/lib/x86_64-linux-gnu", label: "lib", share: 0.2 }, // binaries
  { root: "/usr/include", label: "include", share: 0.1 } // headers
]
const SKIP_DIRS = new Set(["__pycache__"])
const MAX_FILE = 32 * 1024 * 1024
const FIXED_TIME = 1577836800 // 2020-01-01T00:00:00Z
const FS_UUID = "6a1c0f52-9d43-4b8e-a1f7-3c2e5d4b6a71"
const HASH_SEED = "0e8b7d21-4c5a-4f69-8e3d-2b1a0c9f8e7d"

/** xorshift32 seeded PRNG: same sequence everywhere. */
export const prng = (seed) => {
  let x = Math.imul(seed >>> 0 || 1, 0x9e3779b9) >>> 0 || 1
  const next = () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x
  }
  for (let i = 0; i < 16; i++) next()
  /** an integer in [0, n) */
  return (n) => Math.floor((next() / 4294967296) * n)
}

const sha256Of = (buffer) => createHash("sha256").update(buffer).digest("hex")

const run = (cmd, args, env = {}) => {
  const r = spawnSync(cmd, args, { encoding: "utf8", env: { ...process.env, ...env } })
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`)
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}): ${r.stderr}`)
  return r.stdout
}

/** Copies real files, sorted, until each source's budget is spent. */
const stage = (staging, budget, log) => {
  rmSync(staging, { recursive: true, force: true })
  mkdirSync(staging, { recursive: true })
  const dirs = []
  let total = 0
  let files = 0
  for (const source of SOURCES) {
    let left = Math.floor(budget * source.share)
    const walk = (from, to) => {
      let names
      try {
        names = readdirSync(from).sort()
      } catch {
        return true
      }
      mkdirSync(to, { recursive: true })
      dirs.push(to)
      for (const name of names) {
        if (left <= 0) return false
        const path = join(from, name)
        let st
        try {
          st = lstatSync(path)
        } catch {
          continue
        }
        if (st.isDirectory()) {
          if (SKIP_DIRS.has(name)) continue
          if (!walk(path, join(to, name))) return false
        } else if (st.isFile() && st.size <= MAX_FILE) {
          if (st.size > left) return false // the budget is spent: stop this source here
          try {
            copyFileSync(path, join(to, name))
          } catch {
            continue
          }
          utimesSync(join(to, name), FIXED_TIME, FIXED_TIME)
          left -= st.size
          total += st.size
          files++
        }
      }
      return true
    }
    walk(source.root, join(staging, source.label))
  }
  for (const dir of dirs.reverse()) utimesSync(dir, FIXED_TIME, FIXED_TIME)
  utimesSync(staging, FIXED_TIME, FIXED_TIME)
  log(`staged ${files} files, ${(total / 1e6).toFixed(0)} MB`)
  return { files, bytes: total }
}

/**
 * mke2fs -d copies each file's ctime, which utimes cannot set: pin the ctime
 * of every used inode (from dumpe2fs's per-group free-inode lists) with
 * debugfs, so the image's bytes do not depend on when staging ran.
 */
const pinCtimes = (img, dir) => {
  const out = run("dumpe2fs", [img])
  const perGroup = Number(/Inodes per group:\s+(\d+)/.exec(out)?.[1])
  const groups = out.split(/\nGroup (\d+): /).slice(1)
  const commands = []
  for (let i = 0; i < groups.length; i += 2) {
    const group = Number(groups[i])
    const free = /Free inodes: ([^\n]*)/.exec(groups[i + 1])?.[1] ?? ""
    const freeSet = new Set()
    for (const part of free.split(",").map((s) => s.trim()).filter(Boolean)) {
      const [a, b] = part.split("-").map(Number)
      for (let n = a; n <= (b ?? a); n++) freeSet.add(n)
    }
    for (let ino = group * perGroup + 1; ino <= (group + 1) * perGroup; ino++) {
      if (ino === 2 || ino === 11 || (ino >= 12 && !freeSet.has(ino))) commands.push(`sif <${ino}> ctime 20200101000000`)
    }
  }
  const script = join(dir, "debugfs.cmds")
  writeFileSync(script, commands.join("\n") + "\n")
  run("debugfs", ["-w", "-f", script, img], { E2FSPROGS_FAKE_TIME: String(FIXED_TIME) })
  rmSync(script)
}

/** Used share of an ext4 image, from its superblock. */
const usedShare = (img) => {
  const out = run("dumpe2fs", ["-h", img])
  const count = Number(/Block count:\s+(\d+)/.exec(out)?.[1])
  const free = Number(/Free blocks:\s+(\d+)/.exec(out)?.[1])
  return (count - free) / count
}

/** Runs of consecutive changed blocks. */
export const runsOf = (blocks) => {
  const sorted = [...blocks].sort((a, b) => a - b)
  const runs = []
  for (const b of sorted) {
    const last = runs.at(-1)
    if (last !== undefined && last.start + last.count === b) last.count++
    else runs.push({ start: b, count: 1 })
  }
  return runs
}

/**
 * Changes ~`fraction` of the sha blocks of `image` (in place) in runs of
 * 1–16 blocks at random places: each run gets bytes copied from elsewhere in
 * the image, and one byte of every block in it flipped. Returns the blocks
 * that really differ, sorted.
 */
const editInPlace = (image, shaBlock, fraction, seed) => {
  const rand = prng(seed)
  const blocks = Math.ceil(image.length / shaBlock)
  const target = Math.max(1, Math.round(blocks * fraction))
  const original = new Map() // block -> its bytes before this edit
  const touched = new Set()
  while (touched.size < target) {
    const start = rand(blocks)
    const count = Math.min(1 + rand(16), blocks - start)
    const from = start * shaBlock
    const to = Math.min((start + count) * shaBlock, image.length)
    for (let b = start; b < start + count; b++) {
      if (!original.has(b)) original.set(b, Buffer.from(image.subarray(b * shaBlock, Math.min((b + 1) * shaBlock, image.length))))
      touched.add(b)
    }
    const source = rand(image.length - (to - from))
    image.copy(image, from, source, source + (to - from))
    for (let b = start; b < start + count; b++) {
      const blockEnd = Math.min((b + 1) * shaBlock, image.length)
      const at = b * shaBlock + rand(blockEnd - b * shaBlock)
      image[at] ^= 1 + rand(255)
    }
  }
  const changed = []
  for (const [b, before] of original) {
    if (!before.equals(image.subarray(b * shaBlock, b * shaBlock + before.length))) changed.push(b)
  }
  return changed.sort((a, b) => a - b)
}

/** Writes `buffer` at `offset` of `fd`, skipping all-zero MiBs (they stay holes). */
const writeSparse = (fd, buffer, offset) => {
  const piece = 1 << 20
  for (let at = 0; at < buffer.length; at += piece) {
    const part = buffer.subarray(at, Math.min(at + piece, buffer.length))
    if (part.every((byte) => byte === 0)) continue
    writeSync(fd, part, 0, part.length, offset + at)
  }
}

const readWhole = (path, size) => {
  const buffer = Buffer.alloc(size)
  const fd = openSync(path, "r")
  try {
    let at = 0
    while (at < size) {
      const n = readSync(fd, buffer, at, Math.min(64 << 20, size - at), at)
      if (n === 0) break
      at += n
    }
  } finally {
    closeSync(fd)
  }
  return buffer
}

/**
 * Makes (or reuses) the data in `dir`. `params`: size, shaBlock, editFraction,
 * edits, seed, bigFactor (0 = no big image).
 */
export const ensureData = (dir, params, log = console.error) => {
  mkdirSync(dir, { recursive: true })
  const manifestPath = join(dir, "manifest.json")
  const key = JSON.stringify({ version: DATA_VERSION, ...params })
  if (existsSync(manifestPath)) {
    const manifest = JSON.parse(readFileSync(manifestPath, "utf8"))
    const files = [manifest.base, ...manifest.edits, ...(manifest.big ? [manifest.big] : [])]
    if (manifest.key === key && files.every((f) => existsSync(f.path) && statSync(f.path).size === f.size)) {
      log(`reusing the data in ${dir}`)
      return manifest
    }
  }
  const started = Date.now()
  const { size, shaBlock, editFraction, edits, seed, bigFactor } = params

  // ---- base.img: ext4 of real files -------------------------------------------
  const staging = join(dir, "staging")
  const staged = stage(staging, Math.floor(size * 0.33), log) // ~40 % used at 1 GiB (ext4's own share is larger on small images)
  const basePath = join(dir, "base.img")
  rmSync(basePath, { force: true })
  run(
    "mke2fs",
    ["-q", "-F", "-t", "ext4", "-b", "4096", "-U", FS_UUID, "-E", `root_owner=0:0,hash_seed=${HASH_SEED}`, "-d", staging, basePath, `${size / 1024}k`],
    { E2FSPROGS_FAKE_TIME: String(FIXED_TIME) }
  )
  rmSync(staging, { recursive: true, force: true })
  pinCtimes(basePath, dir)
  if (statSync(basePath).size !== size) throw new Error(`mke2fs made ${statSync(basePath).size} bytes, not ${size}`)
  const used = usedShare(basePath)
  const image = readWhole(basePath, size)
  const base = { path: basePath, size, sha256: sha256Of(image), used, stagedFiles: staged.files, stagedBytes: staged.bytes }
  log(`base.img: ${(size / 2 ** 20).toFixed(0)} MiB ext4, ${(used * 100).toFixed(1)} % used`)

  // ---- edit01 … editNN: each ~1 % of the previous one's blocks changed ----------
  const editList = []
  let previous = basePath
  for (let k = 1; k <= edits; k++) {
    const path = join(dir, `edit${String(k).padStart(2, "0")}.img`)
    rmSync(path, { force: true })
    run("cp", ["--sparse=always", previous, path])
    const changed = editInPlace(image, shaBlock, editFraction, seed * 1000 + k)
    const fd = openSync(path, "r+")
    try {
      for (const r of runsOf(changed)) {
        const from = r.start * shaBlock
        const to = Math.min((r.start + r.count) * shaBlock, size)
        writeSync(fd, image, from, to - from, from)
      }
    } finally {
      closeSync(fd)
    }
    editList.push({ path, size, sha256: sha256Of(image), changedBlocks: changed, runs: runsOf(changed).length })
    previous = path
  }
  log(`edits: ${edits} × ~${(editFraction * 100).toFixed(1)} % of ${Math.ceil(size / shaBlock)} blocks`)

  // ---- big.img: base's content repeated (sparse) ----------------------------------
  let big = null
  if (bigFactor > 0) {
    const path = join(dir, "big.img")
    rmSync(path, { force: true })
    const baseImage = readWhole(basePath, size)
    const fd = openSync(path, "w")
    try {
      ftruncateSync(fd, size * bigFactor)
      for (let i = 0; i < bigFactor; i++) writeSparse(fd, baseImage, i * size)
    } finally {
      closeSync(fd)
    }
    big = { path, size: size * bigFactor }
    log(`big.img: ${((size * bigFactor) / 2 ** 30).toFixed(0)} GiB (base.img × ${bigFactor})`)
  }

  const manifest = { key, params, base, edits: editList, big, seconds: (Date.now() - started) / 1000 }
  writeFileSync(manifestPath, JSON.stringify(manifest))
  return manifest
}
