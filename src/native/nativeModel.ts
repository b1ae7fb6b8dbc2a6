/**
 * The native record as stored (issue 14): a patient record that is not FHIR, as a web UI writes it. One
 * organisation's record of a patient is keyed by NHS number; its timeline holds appointments, clinical notes and
 * measurements; questionnaires and their answers, and hybrid-mail letters with read receipts, hang off it.
 */
export interface NativeAddress {
  lines: string[];
  city: string | null;
  postalCode: string | null;
  country: string | null;
}

export interface NativePatient {
  id: string;
  organizationId: string;
  nhsNumber: string;
  family: string;
  given: string[];
  /** YYYY-MM-DD */
  birthDate: string | null;
  gender: Gender | null;
  address: NativeAddress | null;
  phone: string | null;
  email: string | null;
  teamIds: string[];
  updatedAt: Date;
}

export const GENDERS = ['male', 'female', 'other', 'unknown'] as const;
export type Gender = (typeof GENDERS)[number];

export const ENTRY_KINDS = ['appointment', 'note', 'measurement'] as const;
export type EntryKind = (typeof ENTRY_KINDS)[number];

/** Appointment statuses that mean the same in R4 and STU3 (the facade serves both shapes from one value). */
export const APPOINTMENT_STATUSES = ['proposed', 'pending', 'booked', 'arrived', 'fulfilled', 'cancelled', 'noshow', 'entered-in-error'] as const;

export interface NativeEntry {
  id: string;
  patientId: string;
  organizationId: string;
  kind: EntryKind;
  occurredAt: Date;
  /** Appointments: when it ends. */
  endsAt: Date | null;
  title: string | null;
  text: string | null;
  /** Appointments: one of APPOINTMENT_STATUSES. */
  status: string | null;
  /** Measurements: the code's system URI (LOINC or SNOMED CT), code and display. */
  codeSystem: string | null;
  code: string | null;
  codeDisplay: string | null;
  /** Measurements: the decimal exactly as written, and its UCUM unit. */
  value: string | null;
  unit: string | null;
  privacyLabel: string;
  updatedAt: Date;
}

export const QUESTION_TYPES = ['string', 'text', 'integer', 'decimal', 'boolean', 'date'] as const;
export type QuestionType = (typeof QUESTION_TYPES)[number];

export interface NativeQuestion {
  linkId: string;
  text: string;
  type: QuestionType;
}

export interface NativeQuestionnaire {
  id: string;
  organizationId: string;
  title: string;
  items: NativeQuestion[];
  createdAt: Date;
}

export interface NativeAnswer {
  linkId: string;
  /** As text; checked against the question's type when given. */
  value: string;
}

export interface NativeQuestionnaireResponse {
  id: string;
  questionnaireId: string;
  patientId: string;
  organizationId: string;
  answers: NativeAnswer[];
  authoredAt: Date;
}

export interface NativeLetter {
  id: string;
  patientId: string;
  organizationId: string;
  subject: string;
  body: string;
  sentAt: Date;
  /** The read receipt: when the patient opened it. */
  readAt: Date | null;
}

export const LOINC = 'http://loinc.org';
export const SNOMED_CT = 'http://snomed.info/sct';
export const UCUM = 'http://unitsofmeasure.org';
