/**
 * Plain-text tables for the terminal.
 */

/** `2026-12-03 11:25:29`: how the CLI shows a record's UTC time. */
export const utcTime = (date: Date) => date.toISOString().slice(0, 19).replace("T", " ")

/** Columns padded to their widest cell, two spaces apart. */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>) => {
  const widths = header.map((h, i) => rows.reduce((w, row) => Math.max(w, row[i]!.length), h.length))
  const line = (cells: ReadonlyArray<string>) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd()
  return [line(header), ...rows.map(line)].join("\n")
}

/**
 * The prettytable `cinder` prints: a Property/Value table, at most `width`
 * columns wide; a longer value (a backup_url) wraps onto lines of its own.
 */
export const cinderTable = (rows: ReadonlyArray<readonly [string, string]>, width = 100) => {
  const left = rows.reduce((w, [k]) => Math.max(w, k.length), "Property".length)
  const longest = rows.reduce((w, [, v]) => Math.max(w, v.length), "Value".length)
  const right = Math.max("Value".length, Math.min(longest, width - left - 7))
  const rule = `+${"-".repeat(left + 2)}+${"-".repeat(right + 2)}+`
  const line = (k: string, v: string) => `| ${k.padEnd(left)} | ${v.padEnd(right)} |`
  const wrapped = ([k, v]: readonly [string, string]) => {
    const parts: Array<string> = []
    for (let at = 0; at < Math.max(1, v.length); at += right) parts.push(v.slice(at, at + right))
    return parts.map((part, i) => line(i === 0 ? k : "", part))
  }
  return [rule, line("Property", "Value"), rule, ...rows.flatMap(wrapped), rule].join("\n")
}
