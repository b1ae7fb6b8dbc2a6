import type { Resource } from '../fhir/types';
import { conformToR4 } from './stu3/conformToR4';
import { resourceMap } from './stu3/resourceMaps';
import type { Json } from './stu3/stu3Extension';

/**
 * STU3 → R4 as HAPI's `VersionConvertor_30_40` converts it (the original platform's converter): first the
 * type's own rules (stu3/resourceMaps.ts: renamed elements, re-coded statuses, restructured parts), then the
 * element-by-element walk over the R4 and STU3 definitions (stu3/conformToR4.ts: changed datatypes,
 * cardinality, and anything without an R4 home kept in a `http://hl7.org/fhir/3.0/StructureDefinition/
 * extension-<path>` extension). Contained resources are converted the same way. Pure: the input is not changed.
 *
 * The result is validated against R4 before it is aggregated, so anything a map misses is excluded with the
 * validator's reason rather than served malformed. docs/stu3-to-r4.md lists what each type maps to.
 */
export function stu3ToR4(resource: Resource): Resource {
  const copy = cloneJson(resource) as Json;
  convert(copy);
  return copy as Resource;
}

function convert(resource: Json): void {
  const type = resource.resourceType as string;
  for (const contained of Array.isArray(resource.contained) ? (resource.contained as Json[]) : []) if (contained && typeof contained === 'object') convert(contained);
  resourceMap(type)?.(resource);
  conformToR4(resource, type);
}

/**
 * A copy of the JSON tree's arrays and plain objects. Anything else (strings, numbers, and the lossless-number
 * objects that keep a decimal's text) is shared as it is, never re-created: a decimal's digits travel untouched.
 */
function cloneJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(cloneJson);
  if (value && typeof value === 'object') {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) return value;
    const out: Json = {};
    for (const [k, v] of Object.entries(value)) out[k] = cloneJson(v);
    return out;
  }
  return value;
}
