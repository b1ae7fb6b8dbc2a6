import { NHS_NUMBER_SYSTEM } from '../aggregator/patientsByNhsNumber';
import { badRequest } from '../fhir/outcome';
import type { Resource } from '../fhir/types';
import type { PatientInput } from '../native/nativeInput';

/**
 * The body of the demographics `$process-message` (issue 14 item 3; DESIGN §2: a custom operation, not FHIR
 * messaging): one STU3 Patient, already valid STU3, read into the native record's demographics and the team
 * aliases its `team-alias` extensions name. Required: an NHS number identifier (the match key),
 * `name[0].given[0]` and `name[0].family`; each refusal is a 400 naming the element.
 */
export const TEAM_ALIAS_EXTENSION = 'https://fhir.patientsknowbest.com/structuredefinition/team-alias';

export interface DemographicsMessage {
  patient: PatientInput;
  teamAliases: string[];
}

// The body was validated as an STU3 Patient before it gets here: its shape is known, only not to TypeScript.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

export function readDemographicsMessage(body: Resource): DemographicsMessage {
  const p = body as Json;
  const identifiers: Json[] = p.identifier ?? [];
  const nhs = identifiers.find((i) => i.system === NHS_NUMBER_SYSTEM && typeof i.value === 'string');
  if (!nhs) throw badRequest(`An NHS number is required: Patient.identifier with system ${NHS_NUMBER_SYSTEM}`, 'Patient.identifier');
  const name: Json | undefined = p.name?.[0];
  const given = name?.given?.[0];
  if (typeof given !== 'string' || given.trim() === '') throw badRequest('Patient.name[0].given[0] is required', 'Patient.name[0].given[0]');
  if (typeof name?.family !== 'string' || name.family.trim() === '') throw badRequest('Patient.name[0].family is required', 'Patient.name[0].family');
  const telecom: Json[] = p.telecom ?? [];
  const address: Json | undefined = p.address?.[0];
  const teamAliases: string[] = [];
  (p.extension ?? []).forEach((e: Json, i: number) => {
    if (e.url !== TEAM_ALIAS_EXTENSION) return;
    if (typeof e.valueString !== 'string' || e.valueString.trim() === '')
      throw badRequest('A team-alias extension needs a valueString: the alias of a team', `Patient.extension[${i}]`);
    teamAliases.push(e.valueString.trim());
  });
  return {
    patient: {
      nhsNumber: nhs.value,
      family: name.family,
      given: (name.given as string[]).filter((g) => typeof g === 'string' && g.trim() !== ''),
      birthDate: p.birthDate ?? null,
      gender: p.gender ?? null,
      address: address ? { lines: address.line ?? [], city: address.city ?? null, postalCode: address.postalCode ?? null, country: address.country ?? null } : null,
      phone: telecom.find((t) => t.system === 'phone')?.value ?? null,
      email: telecom.find((t) => t.system === 'email')?.value ?? null,
    },
    teamAliases: [...new Set(teamAliases)],
  };
}
