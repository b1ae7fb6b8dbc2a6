import type { Resource } from '../fhir/types';
import { PRIVACY_LABEL_SYSTEM } from '../aggregator/rules';

/**
 * A patient's consent to one grantee as an R4 Consent resource: "deny all, except one permit per granted
 * label". The top provision denies the grantee (its `actor`, so the `actor` search parameter finds it) and
 * each nested provision permits one privacy label to the same actor. Grantees are `CareTeam/team-…` (a team)
 * or `Practitioner/prac-…`. An inactive Consent (every label revoked, or all sharing withdrawn) keeps the
 * labels it last had out of its provisions and stays readable.
 */
export interface ConsentRecord {
  /** The Consent resource id in the aggregated store. */
  id: string;
  patientId: string;
  grantee: string;
  labels: string[];
  status: 'active' | 'inactive';
  /** When it last changed (ISO 8601). */
  dateTime: string;
}

const RECIPIENT = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP', display: 'information recipient' }] };

export function consentResource(record: ConsentRecord): Resource {
  const actor = [{ role: RECIPIENT, reference: { reference: record.grantee } }];
  return {
    resourceType: 'Consent',
    id: record.id,
    status: record.status,
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy', display: 'Privacy Consent' }] },
    category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0', display: 'Patient Consent' }] }],
    patient: { reference: `Patient/${record.patientId}` },
    dateTime: record.dateTime,
    // R4 ppc-1/ppc-2: a privacy consent names its policy; opt-in: nothing is shared but what is permitted.
    policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] },
    provision: {
      type: 'deny',
      actor,
      provision: record.labels.map((label) => ({ type: 'permit', actor, securityLabel: [{ system: PRIVACY_LABEL_SYSTEM, code: label }] })),
    },
  } as Resource;
}
