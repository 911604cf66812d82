/**
 * The incremental row's yardstick: node computing the sha256 of an image
 * file, alone (one stream, one core, from the page cache).
 *
 *   node bench/sha256-file.mjs <file>   → prints the hex digest
 */
import { createHash } from "node:crypto"
import { closeSync, openSync, readSync } from "node:fs"

const fd = openSync(process.argv[2], "r")
const hash = createHash("sha256")
const buffer = Buffer.allocUnsafe(4 << 20)
for (let n; (n = readSync(fd, buffer, 0, buffer.length, null)) > 0; ) hash.update(buffer.subarray(0, n))
closeSync(fd)
console.log(hash.digest("hex"))
