import { isResourceType } from '../fhir/definitions';
import { SUPPORTED_TYPES } from './rules';

/**
 * The aggregated types as configuration (DESIGN §3.1: "the list is configuration; its default is the one PKB
 * publishes"), from `AGGREGATED_TYPES`: either the whole list (`Patient,Observation,…`), or changes to PKB's
 * list (`+Group`, `-Flag`). The two forms do not mix: a bare name among `+`/`-` ones would be read either way.
 * Names are R4 resource types; anything else is refused at start, never found out by a silently empty type.
 */
export function aggregatedTypeList(text: string | undefined): readonly string[] {
  const entries = (text ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  if (!entries.length) return SUPPORTED_TYPES;
  const changes = entries.filter((e) => e.startsWith('+') || e.startsWith('-'));
  if (changes.length && changes.length !== entries.length) {
    throw new Error(`AGGREGATED_TYPES is either a whole list (Patient,Observation) or changes to the default (+Group,-Flag), not both: '${text}'`);
  }
  const names = changes.length ? changes.map((e) => e.slice(1).trim()) : entries;
  const unknown = names.filter((n) => !isResourceType('R4', n));
  if (unknown.length)
    throw new Error(
      `AGGREGATED_TYPES names ${unknown.map((n) => `'${n}'`).join(', ')}, which ${unknown.length === 1 ? 'is not an R4 resource type' : 'are not R4 resource types'}`,
    );
  if (!changes.length) return Object.freeze([...new Set(names)].sort());
  const types = new Set(SUPPORTED_TYPES);
  changes.forEach((e, i) => (e.startsWith('+') ? types.add(names[i]) : types.delete(names[i])));
  if (!types.size) throw new Error(`AGGREGATED_TYPES='${text}' leaves no type to aggregate`);
  return Object.freeze([...types].sort());
}

/**
 * The shortest `AGGREGATED_TYPES` value that gives `types`: empty for PKB's list, its changes (`+Group,-Flag`)
 * when they are fewer names than the whole list, else the whole list. Messages name lists this way, so an
 * operator can copy the value, and the 39 names of the default do not hide the one that differs.
 */
export function aggregatedTypesText(types: readonly string[]): string {
  const wanted = new Set(types);
  const added = [...wanted].filter((t) => !SUPPORTED_TYPES.includes(t)).sort();
  const removed = SUPPORTED_TYPES.filter((t) => !wanted.has(t));
  if (added.length + removed.length < wanted.size) return [...added.map((t) => `+${t}`), ...removed.map((t) => `-${t}`)].join(',');
  return [...wanted].sort().join(',');
}
