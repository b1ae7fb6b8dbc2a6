import 'reflect-metadata';
import { Arg, Ctx, Field, ID, InputType, Int, Mutation, ObjectType, Query, Resolver } from 'type-graphql';
import { forbidden, notFound } from '../fhir/outcome';
import type { NativeRecord } from '../native/nativeRecord';
import type { EntryKind, NativeEntry, NativeLetter, NativePatient, NativeQuestionnaire, NativeQuestionnaireResponse } from '../native/nativeModel';
import type { GraphqlContext } from './fhirSchema';

/**
 * The native record in GraphQL (issue 14 item 1): what a web UI reads and writes for the organisation its
 * client acts for. Each resolver is one call of the caller's `NativeRecord`, which the authorisation point
 * hands out (ctx.native) and which validates every input (400 naming the field, in the OperationOutcome of the
 * error). Every mutation is also written as R4 into the organisation's native store and so reaches the
 * aggregated record (`Patient`, `Observation`, … with the organisation as source). Types are prefixed `Native`.
 */
@ObjectType({ description: 'An address as the native record keeps it' })
export class NativeAddressType {
  @Field(() => [String]) lines!: string[];
  @Field(() => String, { nullable: true }) city!: string | null;
  @Field(() => String, { nullable: true }) postalCode!: string | null;
  @Field(() => String, { nullable: true }) country!: string | null;
}

@ObjectType('NativePatient', { description: "An organisation's native record of a patient (keyed by NHS number); in R4 a Patient of the same id" })
export class NativePatientType {
  @Field(() => ID) id!: string;
  @Field(() => String) nhsNumber!: string;
  @Field(() => String) family!: string;
  @Field(() => [String]) given!: string[];
  @Field(() => String, { nullable: true, description: 'YYYY-MM-DD' }) birthDate!: string | null;
  @Field(() => String, { nullable: true, description: 'male, female, other or unknown' }) gender!: string | null;
  @Field(() => NativeAddressType, { nullable: true }) address!: NativeAddressType | null;
  @Field(() => String, { nullable: true }) phone!: string | null;
  @Field(() => String, { nullable: true }) email!: string | null;
  @Field(() => [ID], { description: "The organisation's teams the patient belongs to" }) teamIds!: string[];
  @Field(() => String, { description: 'ISO 8601 instant' }) updatedAt!: string;
}

@ObjectType('NativeTimelineEntry', { description: 'An appointment (R4 Appointment), clinical note (DocumentReference) or measurement (Observation)' })
export class NativeEntryType {
  @Field(() => ID) id!: string;
  @Field(() => ID) patientId!: string;
  @Field(() => String, { description: 'appointment, note or measurement' }) kind!: string;
  @Field(() => String, { description: 'ISO 8601 instant: when it happened or starts' }) occurredAt!: string;
  @Field(() => String, { nullable: true }) endsAt!: string | null;
  @Field(() => String, { nullable: true }) title!: string | null;
  @Field(() => String, { nullable: true }) text!: string | null;
  @Field(() => String, { nullable: true, description: 'Appointments: booked, fulfilled, cancelled, …' }) status!: string | null;
  @Field(() => String, { nullable: true, description: 'Measurements: http://loinc.org or http://snomed.info/sct' }) codeSystem!: string | null;
  @Field(() => String, { nullable: true }) code!: string | null;
  @Field(() => String, { nullable: true }) codeDisplay!: string | null;
  @Field(() => String, { nullable: true, description: 'Measurements: the decimal exactly as written' }) value!: string | null;
  @Field(() => String, { nullable: true, description: 'Measurements: UCUM unit' }) unit!: string | null;
  @Field(() => String) privacyLabel!: string;
}

@ObjectType('NativeQuestion')
export class NativeQuestionType {
  @Field(() => String) linkId!: string;
  @Field(() => String) text!: string;
  @Field(() => String, { description: 'string, text, integer, decimal, boolean or date' }) type!: string;
}

@ObjectType('NativeQuestionnaire', { description: 'A questionnaire of the organisation (R4 Questionnaire)' })
export class NativeQuestionnaireType {
  @Field(() => ID) id!: string;
  @Field(() => String) title!: string;
  @Field(() => [NativeQuestionType]) items!: NativeQuestionType[];
}

@ObjectType('NativeAnswer')
export class NativeAnswerType {
  @Field(() => String) linkId!: string;
  @Field(() => String) value!: string;
}

@ObjectType('NativeQuestionnaireResponse', { description: "A patient's answers (R4 QuestionnaireResponse)" })
export class NativeResponseType {
  @Field(() => ID) id!: string;
  @Field(() => ID) questionnaireId!: string;
  @Field(() => ID) patientId!: string;
  @Field(() => [NativeAnswerType]) answers!: NativeAnswerType[];
  @Field(() => String) authoredAt!: string;
}

@ObjectType('NativeLetter', { description: 'A hybrid-mail letter (R4 Communication; received = the read receipt)' })
export class NativeLetterType {
  @Field(() => ID) id!: string;
  @Field(() => ID) patientId!: string;
  @Field(() => String) subject!: string;
  @Field(() => String) body!: string;
  @Field(() => String) sentAt!: string;
  @Field(() => String, { nullable: true, description: 'When the patient read it' }) readAt!: string | null;
}

@InputType()
export class NativeAddressInput {
  @Field(() => [String], { nullable: true }) lines?: string[];
  @Field(() => String, { nullable: true }) city?: string;
  @Field(() => String, { nullable: true }) postalCode?: string;
  @Field(() => String, { nullable: true }) country?: string;
}

@InputType({ description: 'Creates the patient, or updates the one of the same NHS number in your organisation' })
export class NativePatientInput {
  @Field(() => String) nhsNumber!: string;
  @Field(() => String) family!: string;
  @Field(() => [String]) given!: string[];
  @Field(() => String, { nullable: true }) birthDate?: string;
  @Field(() => String, { nullable: true }) gender?: string;
  @Field(() => NativeAddressInput, { nullable: true }) address?: NativeAddressInput;
  @Field(() => String, { nullable: true }) phone?: string;
  @Field(() => String, { nullable: true, description: 'Queues a registration invitation (once per address)' }) email?: string;
  @Field(() => [ID], { nullable: true, description: 'Teams of your organisation to add the patient to' }) teamIds?: string[];
}

@InputType()
export class NativeEntryInput {
  @Field(() => ID) patientId!: string;
  @Field(() => String, { description: 'appointment, note or measurement' }) kind!: string;
  @Field(() => String, { description: 'ISO 8601: YYYY-MM-DD or a date-time with a time zone' }) occurredAt!: string;
  @Field(() => String, { nullable: true }) endsAt?: string;
  @Field(() => String, { nullable: true }) title?: string;
  @Field(() => String, { nullable: true, description: 'Required for a note' }) text?: string;
  @Field(() => String, { nullable: true }) status?: string;
  @Field(() => String, { nullable: true, description: 'LOINC or SNOMED (or their system URIs); required for a measurement' }) codeSystem?: string;
  @Field(() => String, { nullable: true }) code?: string;
  @Field(() => String, { nullable: true }) codeDisplay?: string;
  @Field(() => String, { nullable: true, description: 'A decimal as text, e.g. "7.10"; required for a measurement' }) value?: string;
  @Field(() => String, { nullable: true }) unit?: string;
  @Field(() => String, { nullable: true, description: 'GENERAL_HEALTH (default), MENTAL_HEALTH, SEXUAL_HEALTH or SOCIAL_CARE' }) privacyLabel?: string;
}

@InputType({ description: 'A timeline entry of an import: its patient named by patientId or by NHS number' })
export class NativeImportEntryInput extends NativeEntryInput {
  @Field(() => ID, { nullable: true }) declare patientId: string;
  @Field(() => String, { nullable: true }) nhsNumber?: string;
}

@InputType()
export class NativeQuestionInput {
  @Field(() => String) linkId!: string;
  @Field(() => String) text!: string;
  @Field(() => String, { nullable: true }) type?: string;
}

@InputType()
export class NativeAnswerInput {
  @Field(() => String) linkId!: string;
  @Field(() => String) value!: string;
}

const instant = (d: Date | null) => (d ? d.toISOString() : null);
const patientOut = (p: NativePatient): NativePatientType => ({ ...p, updatedAt: p.updatedAt.toISOString() });
const entryOut = (e: NativeEntry): NativeEntryType => ({ ...e, occurredAt: e.occurredAt.toISOString(), endsAt: instant(e.endsAt) });
const questionnaireOut = (q: NativeQuestionnaire): NativeQuestionnaireType => ({ id: q.id, title: q.title, items: q.items });
const responseOut = (r: NativeQuestionnaireResponse): NativeResponseType => ({ ...r, authoredAt: r.authoredAt.toISOString() });
const letterOut = (l: NativeLetter): NativeLetterType => ({ ...l, sentAt: l.sentAt.toISOString(), readAt: instant(l.readAt) });

function record(ctx: GraphqlContext): Promise<NativeRecord> {
  if (!ctx.native) throw forbidden('The native record needs a token of a client acting for an organisation');
  return ctx.native();
}

@Resolver()
export class NativeResolver {
  @Query(() => NativePatientType, { description: "A patient of your organisation's native record" })
  async nativePatient(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphqlContext) {
    const patient = await (await record(ctx)).patient(id);
    if (!patient) throw notFound(`No patient '${id}' in the native record of this organisation`);
    return patientOut(patient);
  }

  @Query(() => [NativePatientType], { description: "Patients of your organisation's native record, by NHS number or all (up to count, default 100)" })
  async nativePatients(
    @Arg('nhsNumber', () => String, { nullable: true }) nhsNumber: string | undefined,
    @Arg('count', () => Int, { nullable: true }) count: number | undefined,
    @Ctx() ctx: GraphqlContext,
  ) {
    return (await (await record(ctx)).patients({ nhsNumber: nhsNumber ?? undefined, limit: count ?? undefined })).map(patientOut);
  }

  @Query(() => [NativeEntryType], { description: "A patient's timeline, newest first" })
  async nativeTimeline(@Arg('patientId', () => ID) patientId: string, @Arg('kind', () => String, { nullable: true }) kind: string | undefined, @Ctx() ctx: GraphqlContext) {
    return (await (await record(ctx)).timeline(patientId, (kind ?? undefined) as EntryKind | undefined)).map(entryOut);
  }

  @Query(() => [NativeQuestionnaireType])
  async nativeQuestionnaires(@Ctx() ctx: GraphqlContext) {
    return (await (await record(ctx)).questionnaires()).map(questionnaireOut);
  }

  @Query(() => [NativeResponseType])
  async nativeQuestionnaireResponses(@Arg('patientId', () => ID) patientId: string, @Ctx() ctx: GraphqlContext) {
    return (await (await record(ctx)).questionnaireResponses(patientId)).map(responseOut);
  }

  @Query(() => [NativeLetterType])
  async nativeLetters(@Arg('patientId', () => ID) patientId: string, @Ctx() ctx: GraphqlContext) {
    return (await (await record(ctx)).letters(patientId)).map(letterOut);
  }

  @Mutation(() => NativePatientType, { description: 'Creates or updates (by NHS number) a patient of your organisation' })
  async nativeSavePatient(@Arg('input', () => NativePatientInput) input: NativePatientInput, @Ctx() ctx: GraphqlContext) {
    const { teamIds, ...patient } = input;
    return patientOut((await (await record(ctx)).savePatient(patient, { teamIds: teamIds ?? [] })).patient);
  }

  @Mutation(() => NativePatientType)
  async nativeAddPatientToTeams(@Arg('patientId', () => ID) patientId: string, @Arg('teamIds', () => [ID]) teamIds: string[], @Ctx() ctx: GraphqlContext) {
    return patientOut(await (await record(ctx)).addPatientToTeams(patientId, teamIds));
  }

  @Mutation(() => NativeEntryType, { description: 'Adds an appointment, clinical note or measurement to a timeline' })
  async nativeAddTimelineEntry(@Arg('input', () => NativeEntryInput) input: NativeEntryInput, @Ctx() ctx: GraphqlContext) {
    return entryOut(await (await record(ctx)).addEntry(input));
  }

  @Mutation(() => Int, {
    description: 'Adds many timeline entries at once, all or none (npm run admin -- import-native); a refusal names the entry as entries[i].field',
  })
  async nativeImportTimeline(@Arg('entries', () => [NativeImportEntryInput]) entries: NativeImportEntryInput[], @Ctx() ctx: GraphqlContext) {
    return (await (await record(ctx)).addEntries(entries, (i) => `entries[${i}].`)).length;
  }

  @Mutation(() => NativeQuestionnaireType)
  async nativeCreateQuestionnaire(@Arg('title', () => String) title: string, @Arg('items', () => [NativeQuestionInput]) items: NativeQuestionInput[], @Ctx() ctx: GraphqlContext) {
    return questionnaireOut(await (await record(ctx)).createQuestionnaire({ title, items }));
  }

  @Mutation(() => NativeResponseType)
  async nativeAnswerQuestionnaire(
    @Arg('questionnaireId', () => ID) questionnaireId: string,
    @Arg('patientId', () => ID) patientId: string,
    @Arg('answers', () => [NativeAnswerInput]) answers: NativeAnswerInput[],
    @Ctx() ctx: GraphqlContext,
  ) {
    return responseOut(await (await record(ctx)).answerQuestionnaire({ questionnaireId, patientId, answers }));
  }

  @Mutation(() => NativeLetterType, { description: 'Sends a hybrid-mail letter to the patient' })
  async nativeSendLetter(
    @Arg('patientId', () => ID) patientId: string,
    @Arg('subject', () => String) subject: string,
    @Arg('body', () => String) body: string,
    @Ctx() ctx: GraphqlContext,
  ) {
    return letterOut(await (await record(ctx)).sendLetter({ patientId, subject, body }));
  }

  @Mutation(() => NativeLetterType, { description: 'Records the read receipt (the first read counts)' })
  async nativeMarkLetterRead(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphqlContext) {
    return letterOut(await (await record(ctx)).markLetterRead(id));
  }
}
