/**
 * Helpers for reading untrusted documents: a nesting limit checked before
 * parsing, and names and lists cut short for error messages, so that what a
 * hostile document contains cannot crash the reader or flood its output.
 */

/** Documents nested deeper than this are refused before parsing: Cinder's are 4 deep, and Schema and its error formatting recurse. */
export const MAX_DOCUMENT_DEPTH = 32

/** Whether arrays and objects in the JSON `text` nest deeper than `limit` (a linear scan that skips strings). */
export const nestsDeeperThan = (text: string, limit: number): boolean => {
  // Fewer openings than the limit cannot nest deeper: counted with native indexOf,
  // this settles a large flat document (a sha256 file's list) without the scan.
  let openings = 0
  for (const opening of ["[", "{"]) {
    for (let at = text.indexOf(opening); at !== -1 && openings <= limit; at = text.indexOf(opening, at + 1)) openings++
  }
  if (openings <= limit) return false
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++ // a backslash escapes the next character
      else if (c === 0x22) inString = false
    } else if (c === 0x22) {
      inString = true
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true
    } else if (c === 0x5d || c === 0x7d) {
      depth--
    }
  }
  return false
}

/** At most `max` characters of an untrusted name, for messages. */
export const clip = (name: string, max = 200): string => (name.length > max ? `${name.slice(0, max)}…` : name)

/** The first few of `names` (clipped), then how many more: an error line stays short whatever the documents list. */
export const someOf = (names: ReadonlyArray<string>, shown = 5): string =>
  names.slice(0, shown).map((name) => clip(name)).join(", ") + (names.length > shown ? ` and ${names.length - shown} more` : "")
