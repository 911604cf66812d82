/**
 * Python's `json.dumps(value, sort_keys=True, indent=2)`, byte for byte.
 * Cinder serialises both documents this way, so byte compatibility needs it:
 * code-point key order, `","` at line ends, `": "` between key and value,
 * every non-printable-ASCII character escaped as `\uXXXX` (lower-case hex,
 * surrogate pairs above U+FFFF), floats as Python's `repr`.
 */

const escapes: Readonly<Record<string, string>> = {
  "\\": "\\\\",
  '"': '\\"',
  "\b": "\\b",
  "\f": "\\f",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t"
}

// Python's ESCAPE_ASCII: backslash, quote, and anything outside ' '..'~'.
const needsEscape = /[\\"]|[^ -~]/g

export const encodeString = (text: string): string =>
  '"' +
  text.replace(
    needsEscape,
    // JS strings are UTF-16, so astral characters arrive as surrogate halves
    // and come out as the pair Python writes.
    (ch) => escapes[ch] ?? "\\u" + ch.charCodeAt(0).toString(16).padStart(4, "0")
  ) +
  '"'

/** Python's float repr: shortest round-trip digits, exponent outside [1e-4, 1e16). */
export const encodeNumber = (n: number): string => {
  if (Number.isNaN(n)) return "NaN"
  if (!Number.isFinite(n)) return n > 0 ? "Infinity" : "-Infinity"
  if (Number.isInteger(n) && Math.abs(n) <= Number.MAX_SAFE_INTEGER) return String(n)
  const [mantissa = "0", exponentText = "0"] = n.toExponential().split("e")
  const exponent = Number(exponentText)
  const negative = mantissa.startsWith("-")
  const digits = mantissa.replace("-", "").replace(".", "")
  const sign = negative ? "-" : ""
  if (exponent < -4 || exponent >= 16) {
    const body = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits
    const expSign = exponent < 0 ? "-" : "+"
    return `${sign}${body}e${expSign}${String(Math.abs(exponent)).padStart(2, "0")}`
  }
  if (exponent < 0) return `${sign}0.${"0".repeat(-exponent - 1)}${digits}`
  const whole = digits.slice(0, exponent + 1).padEnd(exponent + 1, "0")
  const fraction = digits.slice(exponent + 1)
  return `${sign}${whole}.${fraction === "" ? "0" : fraction}`
}

/** Compares by Unicode code point, as Python sorts str keys (not by UTF-16 unit). */
const byCodePoint = (a: string, b: string): number => {
  const left = Array.from(a)
  const right = Array.from(b)
  const length = Math.min(left.length, right.length)
  for (let i = 0; i < length; i++) {
    const diff = left[i]!.codePointAt(0)! - right[i]!.codePointAt(0)!
    if (diff !== 0) return diff
  }
  return left.length - right.length
}

interface Layout {
  /** null: one line with Python's default ", " and ": " separators */
  readonly indent: number | null
  readonly sortKeys: boolean
}

const encodeValue = (value: unknown, layout: Layout, level: number): string => {
  if (value === null || value === undefined) return "null"
  if (value === true) return "true"
  if (value === false) return "false"
  if (typeof value === "number") return encodeNumber(value)
  if (typeof value === "bigint") return value.toString()
  if (typeof value === "string") return encodeString(value)
  const { indent } = layout
  const inner = indent === null ? "" : "\n" + " ".repeat(indent * (level + 1))
  const outer = indent === null ? "" : "\n" + " ".repeat(indent * level)
  const separator = indent === null ? ", " : "," + inner
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]"
    const items = value.map((item) => encodeValue(item, layout, level + 1))
    return "[" + inner + items.join(separator) + outer + "]"
  }
  if (typeof value === "object") {
    const keys = Object.keys(value).filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    if (keys.length === 0) return "{}"
    if (layout.sortKeys) keys.sort(byCodePoint)
    const items = keys.map(
      (k) => encodeString(k) + ": " + encodeValue((value as Record<string, unknown>)[k], layout, level + 1)
    )
    return "{" + inner + items.join(separator) + outer + "}"
  }
  throw new TypeError(`not JSON serializable: ${typeof value}`)
}

/** `json.dumps(value, sort_keys=True, indent=indent)` as text. */
export const pythonJsonDumps = (value: unknown, indent = 2): string => encodeValue(value, { indent, sortKeys: true }, 0)

/** `json.dumps(value)`: one line, keys in insertion order (as oslo's jsonutils writes records). */
export const pythonJsonDumpsCompact = (value: unknown): string =>
  encodeValue(value, { indent: null, sortKeys: false }, 0)
