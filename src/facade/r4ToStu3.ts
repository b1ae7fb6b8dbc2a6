import type { Resource } from '../fhir/types';

/**
 * The facade's STU3 (3.0.2) views of the native record's R4 resources (issue 14 item 2), per type, for the
 * elements the native record writes (src/native/nativeToR4.ts); everything else it writes is the same in both
 * versions. After HL7's R3↔R4 conversion maps (conv30_40): DocumentReference.date is STU3's `indexed`,
 * QuestionnaireResponse.questionnaire a Reference rather than a canonical.
 */
export const FACADE_TYPES = ['Patient', 'Appointment', 'Observation', 'DocumentReference', 'Communication', 'Questionnaire', 'QuestionnaireResponse'] as const;

type Converter = (r4: Resource) => Resource;

const CONVERTERS: Record<string, Converter> = {
  DocumentReference: ({ date, ...rest }) => ({ ...rest, indexed: date ?? (rest.meta as { lastUpdated?: string } | undefined)?.lastUpdated }),
  QuestionnaireResponse: ({ questionnaire, ...rest }) => ({ ...rest, ...(typeof questionnaire === 'string' ? { questionnaire: { reference: questionnaire } } : {}) }),
};

export function isFacadeType(type: string): boolean {
  return (FACADE_TYPES as readonly string[]).includes(type);
}

/** The STU3 view of one native R4 resource of a facade type. */
export function r4ToStu3(resource: Resource): Resource {
  const convert = CONVERTERS[resource.resourceType];
  return convert ? convert(resource) : resource;
}

/**
 * R4 search parameter names of the facade's STU3 names, where they differ (DocumentReference `indexed` is R4
 * `date`); the rest are the same in both versions.
 */
export function r4SearchParam(type: string, name: string): string {
  const [base, ...modifier] = name.split(':');
  if (type === 'DocumentReference' && base === 'indexed') return ['date', ...modifier].join(':');
  return name;
}
