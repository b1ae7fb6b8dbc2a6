import { badRequest } from '../fhir/outcome';
import { PRIVACY_LABELS } from '../aggregator/rules';
import {
  APPOINTMENT_STATUSES,
  ENTRY_KINDS,
  type EntryKind,
  type NativeEntry,
  GENDERS,
  type Gender,
  LOINC,
  type NativeAddress,
  type NativeAnswer,
  type NativeQuestion,
  QUESTION_TYPES,
  type QuestionType,
  SNOMED_CT,
} from './nativeModel';

/**
 * What the native record accepts, checked once for every door (GraphQL mutations, $process-message, the
 * import command): each refusal is a 400 naming the field. Inputs arrive as plain objects.
 */
export interface PatientInput {
  nhsNumber: string;
  family: string;
  given: string[];
  birthDate?: string | null;
  gender?: string | null;
  address?: { lines?: string[] | null; city?: string | null; postalCode?: string | null; country?: string | null } | null;
  phone?: string | null;
  email?: string | null;
}

export interface CheckedPatient {
  nhsNumber: string;
  family: string;
  given: string[];
  birthDate: string | null;
  gender: Gender | null;
  address: NativeAddress | null;
  phone: string | null;
  email: string | null;
}

export interface EntryInput {
  patientId: string;
  kind: string;
  occurredAt: string;
  endsAt?: string | null;
  title?: string | null;
  text?: string | null;
  status?: string | null;
  codeSystem?: string | null;
  code?: string | null;
  codeDisplay?: string | null;
  value?: string | null;
  unit?: string | null;
  privacyLabel?: string | null;
}

/** An entry as checked, before it is stored (the store adds its id, organisation and time). */
export type CheckedEntry = Omit<NativeEntry, 'id' | 'organizationId' | 'updatedAt'>;

/** NHS numbers: ten digits whose last is the modulus 11 check digit of the first nine. */
export function isNhsNumber(value: string): boolean {
  if (!/^\d{10}$/.test(value)) return false;
  let sum = 0;
  for (let i = 0; i < 9; i++) sum += Number(value[i]) * (10 - i);
  const check = 11 - (sum % 11);
  if (check === 10) return false;
  return (check === 11 ? 0 : check) === Number(value[9]);
}

function text(value: unknown, field: string, options: { required?: boolean; max?: number } = {}): string | null {
  if (value === undefined || value === null || (typeof value === 'string' && value.trim() === '')) {
    if (options.required) throw badRequest(`'${field}' is required`, field);
    return null;
  }
  if (typeof value !== 'string') throw badRequest(`'${field}' must be a string`, field);
  if (value.length > (options.max ?? 10_000)) throw badRequest(`'${field}' is longer than ${options.max ?? 10_000} characters`, field);
  return value.trim();
}

const DATE = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/;
const INSTANT = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/;
const DECIMAL = /^-?(0|[1-9]\d*)(\.\d+)?$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function instant(value: unknown, field: string, required: boolean): Date | null {
  const s = text(value, field, { required, max: 40 });
  if (s === null) return null;
  const d = new Date(s);
  if (!INSTANT.test(s) || Number.isNaN(d.getTime())) throw badRequest(`'${field}' must be a date (YYYY-MM-DD) or a date-time with a time zone, e.g. 2026-12-05T09:30:00Z`, field);
  return d;
}

export function checkPatient(input: PatientInput, at = ''): CheckedPatient {
  const f = (name: string) => `${at}${name}`;
  const nhsNumber = (text(input.nhsNumber, f('nhsNumber'), { required: true, max: 20 }) as string).replace(/\s/g, '');
  if (!isNhsNumber(nhsNumber)) throw badRequest(`'${f('nhsNumber')}' is not a valid NHS number (ten digits with a modulus 11 check digit)`, f('nhsNumber'));
  const family = text(input.family, f('family'), { required: true, max: 200 }) as string;
  if (!Array.isArray(input.given) || input.given.length === 0) throw badRequest(`'${f('given')}' needs at least one given name`, f('given'));
  const given = input.given.map((g, i) => text(g, `${f('given')}[${i}]`, { required: true, max: 200 }) as string);
  const birthDate = text(input.birthDate, f('birthDate'), { max: 10 });
  if (birthDate !== null && (!DATE.test(birthDate) || Number.isNaN(Date.parse(birthDate)))) throw badRequest(`'${f('birthDate')}' must be a date, YYYY-MM-DD`, f('birthDate'));
  const gender = text(input.gender, f('gender'), { max: 10 });
  if (gender !== null && !(GENDERS as readonly string[]).includes(gender)) throw badRequest(`'${f('gender')}' must be one of ${GENDERS.join(', ')}`, f('gender'));
  const email = text(input.email, f('email'), { max: 254 });
  if (email !== null && !EMAIL.test(email)) throw badRequest(`'${f('email')}' is not an email address`, f('email'));
  const a = input.address;
  const address: NativeAddress | null = a
    ? {
        lines: (a.lines ?? []).map((l, i) => text(l, `${f('address.lines')}[${i}]`, { required: true, max: 200 }) as string),
        city: text(a.city, f('address.city'), { max: 200 }),
        postalCode: text(a.postalCode, f('address.postalCode'), { max: 20 }),
        country: text(a.country, f('address.country'), { max: 100 }),
      }
    : null;
  return { nhsNumber, family, given, birthDate, gender: gender as Gender | null, address, phone: text(input.phone, f('phone'), { max: 40 }), email };
}

/** `LOINC`, `SNOMED` (or SNOMED-CT) or their system URIs → the system URI. */
function codeSystem(value: string | null, field: string): string {
  const upper = (value ?? '').toUpperCase();
  if (upper === 'LOINC' || value === LOINC) return LOINC;
  if (upper === 'SNOMED' || upper === 'SNOMED-CT' || upper === 'SNOMEDCT' || value === SNOMED_CT) return SNOMED_CT;
  throw badRequest(`'${field}' must be LOINC (${LOINC}) or SNOMED (${SNOMED_CT})`, field);
}

export function checkEntry(input: EntryInput, at = ''): CheckedEntry {
  const f = (name: string) => `${at}${name}`;
  const patientId = text(input.patientId, f('patientId'), { required: true, max: 64 }) as string;
  const kind = text(input.kind, f('kind'), { required: true, max: 20 }) as string;
  if (!(ENTRY_KINDS as readonly string[]).includes(kind)) throw badRequest(`'${f('kind')}' must be one of ${ENTRY_KINDS.join(', ')}`, f('kind'));
  const occurredAt = instant(input.occurredAt, f('occurredAt'), true) as Date;
  const privacyLabel = text(input.privacyLabel, f('privacyLabel'), { max: 20 }) ?? 'GENERAL_HEALTH';
  if (!(PRIVACY_LABELS as readonly string[]).includes(privacyLabel)) throw badRequest(`'${f('privacyLabel')}' must be one of ${PRIVACY_LABELS.join(', ')}`, f('privacyLabel'));
  const entry: CheckedEntry = {
    patientId,
    kind: kind as EntryKind,
    occurredAt,
    endsAt: null,
    title: text(input.title, f('title'), { max: 500 }),
    text: text(input.text, f('text'), { max: 100_000 }),
    status: null,
    codeSystem: null,
    code: null,
    codeDisplay: null,
    value: null,
    unit: null,
    privacyLabel,
  };
  const unused = (names: (keyof EntryInput)[]) => {
    for (const name of names) if (input[name] !== undefined && input[name] !== null && input[name] !== '') throw badRequest(`'${f(name)}' does not apply to a ${kind}`, f(name));
  };
  if (kind === 'appointment') {
    unused(['codeSystem', 'code', 'codeDisplay', 'value', 'unit']);
    entry.endsAt = instant(input.endsAt, f('endsAt'), false);
    if (entry.endsAt && entry.endsAt < occurredAt) throw badRequest(`'${f('endsAt')}' is before '${f('occurredAt')}'`, f('endsAt'));
    entry.status = text(input.status, f('status'), { max: 20 }) ?? 'booked';
    if (!(APPOINTMENT_STATUSES as readonly string[]).includes(entry.status)) throw badRequest(`'${f('status')}' must be one of ${APPOINTMENT_STATUSES.join(', ')}`, f('status'));
  } else if (kind === 'note') {
    unused(['endsAt', 'status', 'codeSystem', 'code', 'codeDisplay', 'value', 'unit']);
    if (entry.text === null) throw badRequest(`'${f('text')}' is required for a note`, f('text'));
  } else {
    unused(['endsAt', 'status']);
    entry.codeSystem = codeSystem(text(input.codeSystem, f('codeSystem'), { required: true, max: 100 }), f('codeSystem'));
    entry.code = text(input.code, f('code'), { required: true, max: 64 });
    entry.codeDisplay = text(input.codeDisplay, f('codeDisplay'), { max: 500 });
    entry.value = text(input.value, f('value'), { required: true, max: 40 });
    if (!DECIMAL.test(entry.value as string)) throw badRequest(`'${f('value')}' must be a decimal number, e.g. 7.25`, f('value'));
    entry.unit = text(input.unit, f('unit'), { max: 40 });
  }
  return entry;
}

export function checkQuestionnaire(input: { title: string; items: { linkId: string; text: string; type?: string | null }[] }): { title: string; items: NativeQuestion[] } {
  const title = text(input.title, 'title', { required: true, max: 500 }) as string;
  if (!Array.isArray(input.items) || input.items.length === 0) throw badRequest("'items' needs at least one question", 'items');
  const seen = new Set<string>();
  const items = input.items.map((item, i) => {
    const linkId = text(item.linkId, `items[${i}].linkId`, { required: true, max: 64 }) as string;
    if (seen.has(linkId)) throw badRequest(`'items[${i}].linkId' repeats '${linkId}'`, `items[${i}].linkId`);
    seen.add(linkId);
    const type = text(item.type, `items[${i}].type`, { max: 20 }) ?? 'string';
    if (!(QUESTION_TYPES as readonly string[]).includes(type)) throw badRequest(`'items[${i}].type' must be one of ${QUESTION_TYPES.join(', ')}`, `items[${i}].type`);
    return { linkId, text: text(item.text, `items[${i}].text`, { required: true, max: 2000 }) as string, type: type as QuestionType };
  });
  return { title, items };
}

export function checkAnswers(questions: NativeQuestion[], answers: { linkId: string; value: string }[]): NativeAnswer[] {
  if (!Array.isArray(answers) || answers.length === 0) throw badRequest("'answers' needs at least one answer", 'answers');
  const byId = new Map(questions.map((q) => [q.linkId, q]));
  return answers.map((a, i) => {
    const question = byId.get(a.linkId);
    if (!question) throw badRequest(`'answers[${i}].linkId' names no question of this questionnaire: '${a.linkId}'`, `answers[${i}].linkId`);
    const value = text(a.value, `answers[${i}].value`, { required: true, max: 10_000 }) as string;
    const ok =
      question.type === 'integer'
        ? /^-?\d+$/.test(value)
        : question.type === 'decimal'
          ? DECIMAL.test(value)
          : question.type === 'boolean'
            ? value === 'true' || value === 'false'
            : question.type === 'date'
              ? DATE.test(value)
              : true;
    if (!ok) throw badRequest(`'answers[${i}].value' must be a ${question.type}`, `answers[${i}].value`);
    return { linkId: a.linkId, value };
  });
}

export function checkLetter(input: { patientId: string; subject: string; body: string }): { patientId: string; subject: string; body: string } {
  return {
    patientId: text(input.patientId, 'patientId', { required: true, max: 64 }) as string,
    subject: text(input.subject, 'subject', { required: true, max: 500 }) as string,
    body: text(input.body, 'body', { required: true, max: 1_000_000 }) as string,
  };
}
