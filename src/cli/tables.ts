/**
 * Plain-text tables for the terminal.
 */

/** Columns padded to their widest cell, two spaces apart. */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>) => {
  const widths = header.map((h, i) => rows.reduce((w, row) => Math.max(w, row[i]!.length), h.length))
  const line = (cells: ReadonlyArray<string>) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd()
  return [line(header), ...rows.map(line)].join("\n")
}

/** The prettytable `cinder` prints: a Property/Value table. */
export const cinderTable = (rows: ReadonlyArray<readonly [string, string]>) => {
  const left = Math.max("Property".length, ...rows.map(([k]) => k.length))
  const right = Math.max("Value".length, ...rows.map(([, v]) => v.length))
  const rule = `+${"-".repeat(left + 2)}+${"-".repeat(right + 2)}+`
  const line = (k: string, v: string) => `| ${k.padEnd(left)} | ${v.padEnd(right)} |`
  return [rule, line("Property", "Value"), rule, ...rows.map(([k, v]) => line(k, v)), rule].join("\n")
}
