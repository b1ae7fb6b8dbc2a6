/**
 * Whether a number's text fits PostgreSQL's numeric, which stores and indexes FHIR decimals: up to 131,072
 * digits before the point and 16,383 after (its documented range). FHIR sets no range of its own, so a
 * decimal beyond these (`1e400000`, `1E-20000`) is refused as bad input rather than failing in the store.
 * JavaScript numbers are always within them.
 */
export const NUMERIC_DIGITS_BEFORE_POINT = 131_072;
export const NUMERIC_DIGITS_AFTER_POINT = 16_383;

export function withinNumeric(text: string): boolean {
  const m = /^[+-]?([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?$/.exec(text);
  if (!m) return true;
  const exponent = Number(m[3] ?? 0);
  return m[1].length + exponent <= NUMERIC_DIGITS_BEFORE_POINT && (m[2]?.length ?? 0) - exponent <= NUMERIC_DIGITS_AFTER_POINT;
}
