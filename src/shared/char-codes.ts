/**
 * A constant ASCII word as its char codes, for loops that compare input against it char by char.
 *
 * Why: charCodeAt on a string the JIT cannot prove flat (an argument, a table entry) checks the
 * string's representation (rope, slice, one or two bytes a char) at every call, about 20-35
 * user-space instructions a char; an array of small integers costs one load. The header and
 * JSON-name comparisons of the request path were most of their parses' cost with strings
 * (`npm run bench -- head-parse` and `request-parse`, instructions per parse).
 */
export function charCodes (word: string): readonly number[] {
  return Array.from(word, c => c.charCodeAt(0))
}
