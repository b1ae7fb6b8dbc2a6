import { NHS_NUMBER_SYSTEM } from '../aggregator/patientsByNhsNumber';
import { PRIVACY_LABEL_SYSTEM } from '../aggregator/rules';
import type { Resource } from '../fhir/types';
import type { NativeEntry, NativeLetter, NativePatient, NativeQuestionnaire, NativeQuestionnaireResponse } from './nativeModel';
import { UCUM } from './nativeModel';

/**
 * The native record mapped to R4 (issue 14): pure functions from stored rows to the resources written into the
 * organisation's native store, where the aggregator takes them as one more source. Ids are the native ids, so
 * a change of a row is an update of its resource. Patients carry their NHS number (the merge key: a native
 * Patient merges with FHIR Patients of the same NHS number) and name their organisation as managing
 * organisation, which makes it the source of everything of theirs (DESIGN §3.7).
 * Letters are Communications (sent, and received = the read receipt); clinical notes are DocumentReferences.
 */
type R4 = Resource & { id: string };

function labelled(label: string): { security: { system: string; code: string }[] } {
  return { security: [{ system: PRIVACY_LABEL_SYSTEM, code: label }] };
}

const subject = (patientId: string) => ({ reference: `Patient/${patientId}` });
const base64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

export function patientToR4(p: NativePatient): R4 {
  const telecom = [...(p.phone ? [{ system: 'phone', value: p.phone }] : []), ...(p.email ? [{ system: 'email', value: p.email }] : [])];
  return {
    resourceType: 'Patient',
    id: p.id,
    identifier: [{ system: NHS_NUMBER_SYSTEM, value: p.nhsNumber }],
    name: [{ use: 'official', family: p.family, given: p.given }],
    ...(telecom.length ? { telecom } : {}),
    ...(p.gender ? { gender: p.gender } : {}),
    ...(p.birthDate ? { birthDate: p.birthDate } : {}),
    ...(p.address
      ? {
          address: [
            {
              ...(p.address.lines.length ? { line: p.address.lines } : {}),
              ...(p.address.city ? { city: p.address.city } : {}),
              ...(p.address.postalCode ? { postalCode: p.address.postalCode } : {}),
              ...(p.address.country ? { country: p.address.country } : {}),
            },
          ],
        }
      : {}),
    managingOrganization: { reference: `Organization/${p.organizationId}` },
  };
}

export function entryToR4(e: NativeEntry): R4 {
  const meta = labelled(e.privacyLabel);
  if (e.kind === 'appointment') {
    return {
      resourceType: 'Appointment',
      id: e.id,
      meta,
      status: e.status ?? 'booked',
      ...(e.title ? { description: e.title } : {}),
      start: e.occurredAt.toISOString(),
      ...(e.endsAt ? { end: e.endsAt.toISOString() } : {}),
      ...(e.text ? { comment: e.text } : {}),
      participant: [{ actor: subject(e.patientId), status: 'accepted' }],
    };
  }
  if (e.kind === 'note') {
    return {
      resourceType: 'DocumentReference',
      id: e.id,
      meta,
      status: 'current',
      // LOINC 11506-3: Progress note.
      type: { coding: [{ system: 'http://loinc.org', code: '11506-3', display: 'Progress note' }], ...(e.title ? { text: e.title } : {}) },
      subject: subject(e.patientId),
      date: e.occurredAt.toISOString(),
      ...(e.title ? { description: e.title } : {}),
      content: [{ attachment: { contentType: 'text/plain; charset=utf-8', data: base64(e.text ?? ''), ...(e.title ? { title: e.title } : {}) } }],
    };
  }
  return {
    resourceType: 'Observation',
    id: e.id,
    meta,
    status: 'final',
    code: { coding: [{ system: e.codeSystem, code: e.code, ...(e.codeDisplay ? { display: e.codeDisplay } : {}) }], ...(e.title ? { text: e.title } : {}) },
    subject: subject(e.patientId),
    effectiveDateTime: e.occurredAt.toISOString(),
    // JSON has one number type; the exact text stays in the native record and in the value's extension-free
    // form here (a decimal such as 7.10 reads back as 7.1 from JSON, the native query keeps "7.10").
    valueQuantity: { value: Number(e.value), ...(e.unit ? { unit: e.unit, system: UCUM, code: e.unit } : {}) },
    ...(e.text ? { note: [{ text: e.text }] } : {}),
  };
}

export function questionnaireToR4(q: NativeQuestionnaire): R4 {
  return {
    resourceType: 'Questionnaire',
    id: q.id,
    status: 'active',
    title: q.title,
    date: q.createdAt.toISOString(),
    item: q.items.map((i) => ({ linkId: i.linkId, text: i.text, type: i.type })),
  };
}

export function questionnaireResponseToR4(r: NativeQuestionnaireResponse, questionnaire: NativeQuestionnaire): R4 {
  const types = new Map(questionnaire.items.map((i) => [i.linkId, i]));
  return {
    resourceType: 'QuestionnaireResponse',
    id: r.id,
    meta: labelled('GENERAL_HEALTH'),
    questionnaire: `Questionnaire/${r.questionnaireId}`,
    status: 'completed',
    subject: subject(r.patientId),
    authored: r.authoredAt.toISOString(),
    item: r.answers.map((a) => {
      const q = types.get(a.linkId);
      return { linkId: a.linkId, ...(q ? { text: q.text } : {}), answer: [answerValue(q?.type ?? 'string', a.value)] };
    }),
  };
}

function answerValue(type: string, value: string): Record<string, unknown> {
  switch (type) {
    case 'integer':
      return { valueInteger: Number(value) };
    case 'decimal':
      return { valueDecimal: Number(value) };
    case 'boolean':
      return { valueBoolean: value === 'true' };
    case 'date':
      return { valueDate: value };
    default:
      return { valueString: value };
  }
}

export function letterToR4(l: NativeLetter): R4 {
  return {
    resourceType: 'Communication',
    id: l.id,
    meta: labelled('GENERAL_HEALTH'),
    status: 'completed',
    // Hybrid mail: delivered to the record, printed and posted if unread.
    medium: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationMode', code: 'WRITTEN', display: 'written' }] }],
    subject: subject(l.patientId),
    recipient: [subject(l.patientId)],
    sender: { reference: `Organization/${l.organizationId}` },
    sent: l.sentAt.toISOString(),
    ...(l.readAt ? { received: l.readAt.toISOString() } : {}),
    payload: [{ contentString: `${l.subject}\n\n${l.body}` }],
    note: [{ text: l.subject }],
  };
}
