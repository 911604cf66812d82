/**
 * `list --tree`: each volume's chains drawn as trees (a full backup, the
 * incrementals on it, theirs on them), with stored bytes and compression
 * ratio per backup (src/driver/storedSize.ts). `show` reuses the fields.
 */
import { Console, Effect } from "effect"
import type { BackupRecord } from "../domain/record.js"
import { storedSizeOf, type StoredSize } from "../driver/storedSize.js"
import { formatBytes } from "./progressView.js"
import { table, utcTime } from "./tables.js"

/** The stored-size fields of a record as JSON: bytes and ratio, null when unknown, and where they came from. */
export const storedFields = (size: StoredSize) =>
  size.source === "unknown"
    ? { stored_bytes: null, compression_ratio: null, stored_bytes_source: size.source, stored_bytes_note: size.reason }
    : {
        stored_bytes: size.storedBytes,
        compression_ratio: size.ratio === null ? null : Number(size.ratio.toFixed(3)),
        stored_bytes_source: size.source,
        ...(size.ratioUnknown === undefined ? {} : { stored_bytes_note: size.ratioUnknown })
      }

interface Node {
  readonly record: BackupRecord
  readonly size: StoredSize
  readonly children: Array<Node>
  /** set on a root whose parent is not among the listed backups */
  readonly missingParent?: string
}

/** The chains of `records` (one volume's): roots oldest first, children oldest first. */
const chainsOf = (records: ReadonlyArray<BackupRecord>, sizes: ReadonlyMap<string, StoredSize>): Array<Node> => {
  const byTime = [...records].sort((a, b) => a.created_at.getTime() - b.created_at.getTime())
  const nodes = new Map(byTime.map((record) => [record.id, { record, size: sizes.get(record.id)!, children: [] as Array<Node> }]))
  const roots: Array<Node> = []
  for (const record of byTime) {
    const node = nodes.get(record.id)!
    const parent = record.parent_id === null ? undefined : nodes.get(record.parent_id)
    if (parent !== undefined && !reaches(parent.record, record.id, nodes)) parent.children.push(node)
    else roots.push(record.parent_id === null ? node : { ...node, missingParent: record.parent_id })
  }
  return roots
}

/** Whether following parents from `from` meets `id` (a cycle in a damaged catalog must not hide a chain). */
const reaches = (from: BackupRecord, id: string, nodes: ReadonlyMap<string, Node>) => {
  const seen = new Set<string>()
  for (let at: BackupRecord | undefined = from; at !== undefined && !seen.has(at.id); at = at.parent_id === null ? undefined : nodes.get(at.parent_id)?.record) {
    if (at.id === id) return true
    seen.add(at.id)
  }
  return false
}

const storedCell = (size: StoredSize) => (size.source === "unknown" ? "unknown" : formatBytes(size.storedBytes))
const ratioCell = (size: StoredSize) => (size.source === "unknown" || size.ratio === null ? "-" : `${size.ratio.toFixed(2)}x`)

/** Rows of a tree: the first column carries the branch drawing. */
const rows = (nodes: ReadonlyArray<Node>, indent: string, topLevel: boolean): Array<Array<string>> =>
  nodes.flatMap((node, i) => {
    const last = i === nodes.length - 1
    const branch = topLevel ? "" : last ? "└─ " : "├─ "
    const r = node.record
    const kind = r.parent_id === null ? "full" : node.missingParent === undefined ? "incr" : `incr of ${node.missingParent.slice(0, 8)} (not listed)`
    const row = [`${indent}${branch}${r.id}`, kind, r.status, utcTime(r.created_at), formatBytes(r.volume_size_bytes), String(r.object_count), storedCell(node.size), ratioCell(node.size)]
    const childIndent = topLevel ? indent : `${indent}${last ? "   " : "│  "}`
    return [row, ...rows(node.children, childIndent, false)]
  })

const nodeJson = (node: Node): unknown => ({
  id: node.record.id,
  parent_id: node.record.parent_id,
  status: node.record.status,
  created_at: node.record.created_at.toISOString(),
  size: node.record.size,
  volume_size_bytes: node.record.volume_size_bytes,
  object_count: node.record.object_count,
  display_name: node.record.display_name,
  ...storedFields(node.size),
  children: node.children.map(nodeJson)
})

/** Prints `records` as chains per volume (text) or as nested JSON. */
export const printTree = (records: ReadonlyArray<BackupRecord>, json: boolean, note: string) =>
  Effect.gen(function* () {
    const sized = yield* Effect.forEach(records, (r) => Effect.map(storedSizeOf(r), (size) => [r.id, size] as const), { concurrency: 4 })
    const sizes = new Map(sized)
    const volumes = [...new Set(records.map((r) => r.volume_id))].sort()
    const trees = volumes.map((volume) => ({ volume, chains: chainsOf(records.filter((r) => r.volume_id === volume), sizes) }))
    if (json) {
      return yield* Console.log(JSON.stringify({ volumes: trees.map((t) => ({ volume_id: t.volume, chains: t.chains.map(nodeJson) })) }))
    }
    if (records.length === 0) return yield* Console.log(`no backups${note}`)
    const header = ["BACKUP", "TYPE", "STATUS", "CREATED (UTC)", "SIZE", "OBJECTS", "STORED", "RATIO"]
    const blocks = trees.map((t) => `volume ${t.volume}: ${t.chains.length} chain(s)\n${table(header, rows(t.chains, "", true))}`)
    const sources = [...new Set(sized.map(([, s]) => (s.source === "unknown" ? `unknown (${s.reason})` : "the store's listing")))]
    yield* Console.log(`${blocks.join("\n\n")}\nstored bytes from ${sources.join("; ")}; RATIO = volume bytes in the data objects / their stored bytes${note}`)
  })
