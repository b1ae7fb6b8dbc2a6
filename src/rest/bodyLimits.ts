import { isAscii } from 'node:buffer';
import { exactNumberText, numberEnd } from '../fhir/losslessJson';
import { badRequest, OperationOutcomeError, operationOutcome } from '../fhir/outcome';

/**
 * Checks on a request body's bytes before any parser sees them (issue 16): the charset must be UTF-8, the
 * bytes must be strict UTF-8 (no replacement characters silently stored), and a JSON body's nesting must stay
 * under a depth limit (a recursive parser, validator or indexer given 10,000 nested arrays overflows its
 * stack). The JSON scan also refuses what PostgreSQL's jsonb cannot store: the `\u0000` escape and unpaired
 * surrogate escapes, which would otherwise fail at INSERT time as a 500.
 *
 * One linear pass over the text, no allocation per token: it is run on every JSON body.
 */
export const DEFAULT_MAX_DEPTH = 100;

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** 415 when the Content-Type names a charset other than UTF-8 (FHIR's only JSON and XML encoding, http.html#mime-type). */
export function assertUtf8Charset(contentType: string | undefined): void {
  const m = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType ?? '');
  if (m && !/^utf-?8$/i.test(m[1])) {
    throw new OperationOutcomeError(
      415,
      operationOutcome([{ severity: 'error', code: 'not-supported', diagnostics: `charset '${m[1]}' is not supported: FHIR bodies are UTF-8 (Content-Type charset=utf-8)` }]),
    );
  }
}

/** The body as text; 400 naming the byte offset when it is not valid UTF-8. */
export function decodeUtf8(body: Buffer): string {
  // ASCII (nearly every body) reads the same as UTF-8 and as Latin-1, whose one-byte copy skips the decoder.
  if (isAscii(body)) return body.toString('latin1');
  try {
    return STRICT_UTF8.decode(body);
  } catch {
    throw badRequest(`The body is not valid UTF-8 (first bad byte at offset ${firstInvalidUtf8(body)})`);
  }
}

/** The offset of the first byte that does not start or continue a valid UTF-8 sequence. */
function firstInvalidUtf8(bytes: Buffer): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    const length = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (length === 0 || i + length > bytes.length) return i;
    for (let k = 1; k < length; k++) if ((bytes[i + k] & 0xc0) !== 0x80) return i;
    const text = bytes.subarray(i, i + length);
    try {
      STRICT_UTF8.decode(text);
    } catch {
      return i;
    }
    i += length;
  }
  return i;
}

const isHex = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);

/**
 * 400 when JSON text nests objects and arrays deeper than `maxDepth`, or a string holds `\u0000` or an unpaired
 * surrogate escape. Malformed JSON is left for the parser to report (this scan only counts brackets outside strings).
 * Strings are skipped from quote to quote (`indexOf`), stopping only at their backslashes; text with a raw NUL
 * anywhere (always refused, by this scan or by the parser) takes the character-by-character scan.
 *
 * The same pass reads the numbers between the strings, which the lossless parser would otherwise walk the whole
 * text again for (fhir/losslessJson.ts): true when every one is exact as a JavaScript number and the strings'
 * bounds are certain (each string closed, each `\u` escape four hex digits), so `parseFhirJson(text, {
 * numbersExact: true })` reads the text as it would have on its own; false when that is not known.
 */
export function assertJsonShape(text: string, maxDepth = DEFAULT_MAX_DEPTH, bytes?: Uint8Array): boolean {
  if (text.indexOf('\0') >= 0) {
    assertJsonShapeByCharacter(text, maxDepth);
    return false;
  }
  // An ASCII body (`bytes[i]` is `text`'s character `i`): what lies between strings is read from the bytes, which
  // cost a third of reading a string's characters (the indentation of a pretty-printed body is half its size).
  const ascii = bytes !== undefined && bytes.length === text.length ? bytes : undefined;
  let depth = 0;
  let backslash = text.indexOf('\\');
  let exact = true;
  let i = 0;
  while (i < text.length) {
    const c = ascii !== undefined ? ascii[i] : text.charCodeAt(i);
    if (c <= 0x20 || c === 0x2c || c === 0x3a) {
      // White space, ',' and ':': most of what lies between strings.
      i++;
      continue;
    }
    if (c === 0x22) {
      // A string: from the character after its quote to the one after its closing quote.
      i++;
      for (;;) {
        // Unterminated (the parser reports it): its escapes are still checked, up to the end of the text.
        const quote = text.indexOf('"', i);
        if (quote < 0) exact = false;
        const close = quote < 0 ? text.length : quote;
        if (backslash >= 0 && backslash < i) backslash = text.indexOf('\\', i);
        if (backslash < 0 || backslash > close) {
          i = close + 1;
          break;
        }
        const length = escapeLength(text, backslash);
        if (length === 6 && escapeAt(text, backslash + 2) < 0) exact = false;
        i = backslash + length;
        backslash = text.indexOf('\\', i);
      }
      continue;
    }
    if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) throw tooDeep(maxDepth);
    } else if (c === 0x5d || c === 0x7d) depth--;
    else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      // A number ('-' or a digit): its characters hold no quote, bracket or backslash.
      const end = numberEnd(text, i);
      if (exact && !exactNumberText(text, i, end)) exact = false;
      i = end;
      continue;
    }
    i++;
  }
  return exact;
}

const tooDeep = (maxDepth: number) => badRequest(`The body is nested more than ${maxDepth} levels deep (objects and arrays): the limit is ${maxDepth} (MAX_BODY_DEPTH)`);

/**
 * The characters an escape at `at` (a backslash inside a string) spans: 12 for a surrogate pair, 6 for another
 * `\uXXXX` (or four characters that are not hex, left to the parser), 2 for the others; 400 for `\u0000` and
 * an unpaired surrogate.
 */
function escapeLength(text: string, at: number): number {
  if (text.charCodeAt(at + 1) !== 0x75 /* u */) return 2;
  const code = escapeAt(text, at + 2);
  if (code === 0) throw badRequest('The body holds a NUL character (\\u0000), which FHIR strings may not contain');
  if (code >= 0xd800 && code <= 0xdbff) {
    const low = text.charCodeAt(at + 6) === 0x5c && text.charCodeAt(at + 7) === 0x75 ? escapeAt(text, at + 8) : -1;
    if (low < 0xdc00 || low > 0xdfff) throw badRequest(`The body holds an unpaired surrogate (\\u${text.slice(at + 2, at + 6)}), which is not a Unicode character`);
    return 12;
  }
  if (code >= 0xdc00 && code <= 0xdfff) throw badRequest(`The body holds an unpaired surrogate (\\u${text.slice(at + 2, at + 6)}), which is not a Unicode character`);
  return 6;
}

/** The same scan one character at a time: for text with a raw NUL, refused inside a string. Exported for tests. */
export function assertJsonShapeByCharacter(text: string, maxDepth = DEFAULT_MAX_DEPTH): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x22) inString = false;
      else if (c === 0x5c) i += escapeLength(text, i) - 1;
      else if (c === 0) throw badRequest('The body holds a NUL character, which FHIR strings may not contain');
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) throw tooDeep(maxDepth);
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
}

/** The code unit of the four hex digits at `at`, or -1 when they are not four hex digits. */
function escapeAt(text: string, at: number): number {
  for (let k = 0; k < 4; k++) if (!isHex(text.charCodeAt(at + k))) return -1;
  return parseInt(text.slice(at, at + 4), 16);
}

/**
 * Reads and discards the rest of a refused request's body (at most `maxBytes`) so that the 413 reaches a
 * client that is still sending: answering and closing mid-upload makes the client's next write fail with a
 * broken pipe, and most clients then report that instead of the answer. Past `maxBytes` it stops reading
 * and the connection is closed with the answer.
 */
export function drainRequest(raw: import('node:http').IncomingMessage, maxBytes: number): Promise<void> {
  if (raw.complete || raw.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    let received = 0;
    const finish = () => {
      raw.off('data', onData);
      raw.off('end', finish);
      raw.off('error', finish);
      raw.off('close', finish);
      resolve();
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > maxBytes) finish();
    };
    raw.on('data', onData);
    raw.on('end', finish);
    raw.on('error', finish);
    raw.on('close', finish);
    raw.resume();
  });
}
