// Splitting text into words: a word is a maximal run of letters, anything else separates
// words (the lab's unicode.IsLetter). ASCII is tested with arithmetic because it is almost
// all of the input; other characters with the Unicode letter property.

const unicodeLetter = /^\p{L}$/u;

function isLetterCode(code: number, text: string, index: number): boolean {
  if (code < 0x80) return ((code | 0x20) - 0x61) >>> 0 < 26;
  return unicodeLetter.test(String.fromCodePoint(text.codePointAt(index)!));
}

/** Calls `visit` with every word of `text`, in order. */
export function forEachWord(text: string, visit: (word: string) => void): void {
  let start = -1;
  let i = 0;
  while (i < text.length) {
    const code = text.charCodeAt(i);
    // A surrogate pair is one character of width 2.
    const width = code >= 0xd800 && code <= 0xdbff && i + 1 < text.length ? 2 : 1;
    if (isLetterCode(code, text, i)) {
      if (start < 0) start = i;
    } else if (start >= 0) {
      visit(text.slice(start, i));
      start = -1;
    }
    i += width;
  }
  if (start >= 0) visit(text.slice(start));
}
