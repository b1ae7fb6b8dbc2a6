import { cloneFhir } from '../fhir/losslessJson';
import type { Resource } from '../fhir/types';

/**
 * STU3 → R4 for the element changes that matter in practice (after HL7's R3↔R4 conversion maps). The
 * result is validated against R4 before it is aggregated, so anything a map misses is excluded with the
 * validator's reason rather than served malformed.
 */
type Json = Record<string, unknown>;
type Mapper = (r: Json) => void;

const concept = (system: string, code: unknown) => (typeof code === 'string' ? { coding: [{ system, code }] } : code);
const rename = (r: Json, from: string, to: string) => {
  if (r[from] !== undefined) {
    if (r[to] === undefined) r[to] = r[from];
    delete r[from];
  }
};
const contextToEncounter: Mapper = (r) => {
  const ctx = r.context as { reference?: string } | undefined;
  if (ctx && typeof ctx.reference === 'string' && ctx.reference.startsWith('Encounter/')) r.encounter = ctx;
  delete r.context;
};
const asArray = (r: Json, key: string) => {
  if (r[key] !== undefined && !Array.isArray(r[key])) r[key] = [r[key]];
};

/** STU3 Dosage.dose[x]/rate[x] moved under Dosage.doseAndRate in R4. */
const dosage =
  (key: string): Mapper =>
  (r) => {
    for (const d of (r[key] as Json[] | undefined) ?? []) {
      const entry: Json = {};
      for (const k of Object.keys(d)) {
        if (/^(dose|rate)(Quantity|Range|SimpleQuantity|Ratio)$/.test(k)) {
          entry[k.replace('SimpleQuantity', 'Quantity')] = d[k];
          delete d[k];
        }
      }
      if (Object.keys(entry).length) d.doseAndRate = [entry];
    }
  };

const MAPPERS: Record<string, Mapper[]> = {
  Condition: [
    (r) => {
      r.clinicalStatus = concept('http://terminology.hl7.org/CodeSystem/condition-clinical', r.clinicalStatus);
      if (r.verificationStatus !== undefined) r.verificationStatus = concept('http://terminology.hl7.org/CodeSystem/condition-ver-status', r.verificationStatus);
      if (r.assertedDate !== undefined) {
        r.extension = [...((r.extension as unknown[]) ?? []), { url: 'http://hl7.org/fhir/StructureDefinition/condition-assertedDate', valueDateTime: r.assertedDate }];
        delete r.assertedDate;
      }
      if (r.clinicalStatus === undefined) delete r.clinicalStatus;
    },
    contextToEncounter,
  ],
  AllergyIntolerance: [
    (r) => {
      if (r.clinicalStatus !== undefined) r.clinicalStatus = concept('http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical', r.clinicalStatus);
      if (r.verificationStatus !== undefined) r.verificationStatus = concept('http://terminology.hl7.org/CodeSystem/allergyintolerance-verification', r.verificationStatus);
      rename(r, 'assertedDate', 'recordedDate');
      if (Array.isArray(r.reaction)) for (const reaction of r.reaction as Json[]) delete reaction.certainty;
    },
  ],
  Encounter: [(r) => rename(r, 'reason', 'reasonCode'), (r) => delete r.incomingReferral],
  Observation: [contextToEncounter],
  DiagnosticReport: [contextToEncounter, (r) => rename(r, 'codedDiagnosis', 'conclusionCode')],
  Procedure: [
    contextToEncounter,
    (r) => {
      asArray(r, 'reasonReference');
      if (r.notDone === true) r.status = 'not-done';
      delete r.notDone;
      delete r.notDoneReason;
    },
  ],
  Immunization: [
    (r) => {
      if (r.notGiven === true) r.status = 'not-done';
      delete r.notGiven;
      rename(r, 'date', 'occurrenceDateTime');
      if (r.occurrenceDateTime === undefined && r.occurrenceString === undefined) r.occurrenceString = 'unknown';
      if (Array.isArray(r.practitioner)) {
        r.performer = (r.practitioner as Json[]).map((p) => ({ actor: p.actor, ...(p.role ? { function: p.role } : {}) }));
        delete r.practitioner;
      }
      delete r.explanation;
    },
  ],
  MedicationRequest: [contextToEncounter, (r) => delete r.definition, dosage('dosageInstruction')],
  MedicationStatement: [(r) => delete r.taken, (r) => delete r.reasonNotTaken, dosage('dosage')],
  CarePlan: [contextToEncounter, (r) => delete r.definition],
  Patient: [(r) => delete r.animal],
};

export function stu3ToR4(resource: Resource): Resource {
  const copy = cloneFhir(resource) as Json;
  for (const map of MAPPERS[resource.resourceType] ?? []) map(copy);
  return copy as Resource;
}
