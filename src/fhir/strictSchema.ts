/**
 * Closes three gaps in HL7's FHIR JSON schema that let malformed shapes through to the store (issue 16):
 * complex types declare `properties` but no `type`, so `"meta": "x"` or `"telecom": [[[]]]` (an array where an
 * object belongs) satisfied them; and `integer`, `positiveInt` and `unsignedInt` are `"type": "number"` with a
 * pattern that JSON Schema applies to strings only, so `1e308` or `1.5` passed as an integer. FHIR's integers
 * are 32-bit (datatypes.html#integer).
 */
type Definition = Record<string, unknown>;

const INT32 = { minimum: -2147483648, maximum: 2147483647 };
const INTEGERS: Record<string, Definition> = {
  integer: { type: 'integer', ...INT32 },
  positiveInt: { type: 'integer', minimum: 1, maximum: INT32.maximum },
  unsignedInt: { type: 'integer', minimum: 0, maximum: INT32.maximum },
};

/** A copy of the schema's definitions with objects required where properties are declared and integers bounded. */
export function strictDefinitions(definitions: Record<string, Definition>): Record<string, Definition> {
  // Element schemas inline the primitive's type and pattern rather than referring to it: know them by pattern.
  const byPattern = new Map<unknown, Definition>();
  for (const [name, bounds] of Object.entries(INTEGERS)) if (definitions[name]?.pattern) byPattern.set(definitions[name].pattern, bounds);
  const strict = (schema: Definition): Definition => {
    const integer = schema.type === 'number' ? byPattern.get(schema.pattern) : undefined;
    if (integer) {
      const { pattern: _pattern, ...rest } = schema;
      return { ...rest, ...integer };
    }
    let out = schema;
    if (schema.items && typeof schema.items === 'object') out = { ...out, items: strict(schema.items as Definition) };
    if (schema.properties && typeof schema.properties === 'object') {
      const properties = Object.fromEntries(Object.entries(schema.properties as Record<string, Definition>).map(([k, v]) => [k, strict(v)]));
      out = { ...out, properties, ...(schema.type === undefined ? { type: 'object' } : {}) };
    }
    return out;
  };
  return Object.fromEntries(Object.entries(definitions).map(([name, definition]) => [name, strict(definition)]));
}
