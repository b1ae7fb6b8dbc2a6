import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { exactNumberText, parseFhirJson, stringifyFhirJson } from '../../src/fhir/losslessJson';
import { assertJsonShape, assertJsonShapeByCharacter, decodeUtf8 } from '../../src/rest/bodyLimits';

/**
 * The body checks every JSON request passes have fast paths (rest/bodyLimits.ts): the depth and escape scan skips
 * strings from quote to quote, and an ASCII body is copied rather than decoded. Each must give exactly what the
 * plain way gives — the character-by-character scan, the strict UTF-8 decoder — on real bodies and on the
 * hostile ones the checks exist for.
 */
// Beside the checkout, or beside the folder of worktrees a checkout may sit in (as bench/lib/dataset.ts looks).
const SYNTHEA = [path.resolve(__dirname, '../../../shared/data/synthea-r4'), path.resolve(__dirname, '../../../../shared/data/synthea-r4')].find((d) => existsSync(d)) as string;
const STRICT = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** The three smallest Synthea R4 bundles: real bodies, pretty-printed, with escapes and non-ASCII names among them. */
function bundles(): Buffer[] {
  return readdirSync(SYNTHEA)
    .filter((f) => f.endsWith('.json'))
    .map((f) => ({ f, size: statSync(path.join(SYNTHEA, f)).size }))
    .sort((a, b) => a.size - b.size || a.f.localeCompare(b.f))
    .slice(0, 3)
    .map(({ f }) => readFileSync(path.join(SYNTHEA, f)));
}

/** What a scan says of `text`: 'ok' (or its number verdict) or the refusal's diagnostics. */
function verdict(scan: (text: string, maxDepth?: number) => unknown, text: string, maxDepth?: number): string {
  try {
    const exact = scan(text, maxDepth);
    return exact === false ? 'ok, numbers not known exact' : 'ok';
  } catch (e) {
    return (e as { outcome?: { issue: { diagnostics?: string }[] } }).outcome?.issue[0].diagnostics ?? String(e);
  }
}

/** The scan of an ASCII body's bytes, as the server runs it (the text's own scan for any other text). */
const byteScan = (text: string, maxDepth?: number) => assertJsonShape(text, maxDepth, Buffer.from(text, 'utf8'));
/** The text scan on its own, its number verdict left out (the character scan has none). */
const textScan = (text: string, maxDepth?: number) => void assertJsonShape(text, maxDepth);

/** A deterministic generator (mulberry32), so a failure names a case that can be run again. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// What the scan looks at: quotes, backslashes and escapes (good and bad), brackets, and a raw NUL.
const PIECES = ['"', '\\', '\\"', '\\\\', '\\u0000', '\\ud800', '\\udc00', '\\ud83d\\ude00', '\\u00e9', '\\u12', '[', ']', '{', '}', '\u0000', 'é', ' '];

test('the quote-to-quote scan gives the character scan’s verdict on Synthea bundles and on 3,000 mutations of one', () => {
  const texts = bundles().map((b) => b.toString('utf8'));
  for (const text of texts) {
    expect(verdict(assertJsonShape, text)).toBe('ok');
    expect(verdict(byteScan, text)).toBe('ok');
    // A limit the bundle exceeds: both refuse it, with the same words.
    expect(verdict(textScan, text, 5)).toBe(verdict(assertJsonShapeByCharacter, text, 5));
    expect(verdict(byteScan, text, 5)).toBe(verdict(assertJsonShapeByCharacter, text, 5));
    expect(verdict(assertJsonShape, text, 5)).toMatch(/nested more than 5 levels/);
  }
  const next = random(19);
  const sample = texts[0];
  let refused = 0;
  for (let n = 0; n < 3000; n++) {
    // A window of the bundle (so a cut can fall inside a string or an escape), with a few pieces put in.
    const from = Math.floor(next() * (sample.length - 2000));
    let text = sample.slice(from, from + 200 + Math.floor(next() * 1800));
    for (let k = Math.floor(next() * 4); k > 0; k--) {
      const at = Math.floor(next() * text.length);
      text = text.slice(0, at) + PIECES[Math.floor(next() * PIECES.length)] + text.slice(at);
    }
    const maxDepth = 1 + Math.floor(next() * 6);
    const expected = verdict(assertJsonShapeByCharacter, text, maxDepth);
    if (expected !== 'ok') refused++;
    expect({ n, verdict: verdict(textScan, text, maxDepth) }).toEqual({ n, verdict: expected });
    // The bytes of an ASCII text give the text scan's verdicts, its number verdict included.
    expect({ n, verdict: verdict(byteScan, text, maxDepth) }).toEqual({ n, verdict: verdict(assertJsonShape, text, maxDepth) });
  }
  // The mutations reach every refusal, and many pass.
  expect(refused).toBeGreaterThan(300);
  expect(refused).toBeLessThan(2700);
});

test.each([
  ['an escaped quote and backslash', '{"a":"x\\"]]]\\\\","b":[[1]]}'],
  ['\\u0000', '{"a":"\\u0000"}'],
  ['an unpaired high surrogate', '{"a":"\\ud800x"}'],
  ['an unpaired low surrogate', '{"a":"\\udc00"}'],
  ['a surrogate pair', '{"a":"\\ud83d\\ude00"}'],
  ['a short \\u escape before a quote', '{"a":"\\u1","b":[[[[1]]]]}'],
  ['a raw NUL in a string', '{"a":"x\u0000"}'],
  ['a raw NUL outside strings', '{"a":1}\u0000'],
  ['brackets inside strings', '{"a":"[[[[[[{{{{{"}'],
  ['an unterminated string', '{"a":"[[[[[['],
  ['a backslash at the end', '{"a":"\\'],
  ['nesting one over the limit', '[[[[1]]]]'],
])('the scans agree on %s', (_name, text) => {
  expect(verdict(textScan, text, 3)).toBe(verdict(assertJsonShapeByCharacter, text, 3));
  expect(verdict(byteScan, text, 3)).toBe(verdict(assertJsonShape, text, 3));
});

/** What the lossless parser makes of `text`: the values written back with their digits, or the refusal's diagnostics. */
function parsed(text: string, options?: { numbersExact?: boolean }): string {
  try {
    return stringifyFhirJson(parseFhirJson(text, options));
  } catch (e) {
    return (e as { outcome?: { issue: { diagnostics?: string }[] } }).outcome?.issue[0].diagnostics ?? String(e);
  }
}

// Numbers JSON.parse keeps and numbers it does not (an exponent, a trailing zero, 16 digits, -0, 0.0000001).
const NUMBERS = ['5', '-7', '0', '1.5', '1.50', '-0', '1e3', '2E-5', '12345678901234567', '123456789012345', '0.0000001', '00', '-', '3.'];

test('the body scan’s number verdict lets the parser skip its own scan only where that changes nothing', () => {
  const texts = bundles().map((b) => b.toString('utf8'));
  // Real bodies: every number exact, so the parser's own walk is skipped.
  for (const text of texts) expect(assertJsonShape(text)).toBe(true);
  const next = random(23);
  const sample = texts[0];
  let skipped = 0;
  for (let n = 0; n < 3000; n++) {
    // Whole objects of the bundle (so most windows parse) or any window, with numbers and escapes put in.
    const from = Math.floor(next() * (sample.length - 2000));
    const start = next() < 0.5 ? sample.indexOf('\n        {', from) + 1 : from;
    const end = next() < 0.5 ? sample.indexOf('\n        }', start) + 10 : start + 200 + Math.floor(next() * 1800);
    let text = sample.slice(start, end);
    for (let k = Math.floor(next() * 4); k > 0; k--) {
      const at = Math.floor(next() * text.length);
      const piece = next() < 0.7 ? `${NUMBERS[Math.floor(next() * NUMBERS.length)]}` : PIECES[Math.floor(next() * PIECES.length)];
      text = text.slice(0, at) + piece + text.slice(at);
    }
    let exact: boolean;
    try {
      exact = assertJsonShape(text);
    } catch {
      continue;
    }
    expect({ n, exact: byteScan(text) }).toEqual({ n, exact });
    if (exact) skipped++;
    expect({ n, parsed: parsed(text, { numbersExact: exact }) }).toEqual({ n, parsed: parsed(text) });
  }
  expect(skipped).toBeGreaterThan(300);
});

test('an integer’s quick exactness test agrees with writing the number back', () => {
  const texts = ['0', '-0', '5', '-5', '00', '-01', '-', '123456789012345', '-123456789012345', '1234567890123456', '999999999999999', '9007199254740993', '10', '1.0', '1e2'];
  for (const text of texts) expect({ text, exact: exactNumberText(`[${text}]`, 1, text.length + 1) }).toEqual({ text, exact: String(Number(text)) === text && !/e/i.test(text) });
});

test('an ASCII body is read as the strict UTF-8 decoder reads it, and so is any other', () => {
  const bodies = [...bundles(), Buffer.from('{"resourceType":"Patient"}'), Buffer.from('\uFEFF{"name":"Zoë"}'), Buffer.from([0x7b, 0x7d, 0x7f])];
  expect(bodies.some((b) => b.some((byte) => byte > 0x7f))).toBe(true);
  for (const body of bodies) expect(decodeUtf8(body)).toBe(STRICT.decode(body));
  expect(() => decodeUtf8(Buffer.from([0x7b, 0xff, 0x7d]))).toThrow(/not valid UTF-8 \(first bad byte at offset 1\)/);
});
