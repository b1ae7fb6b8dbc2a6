import { addExtensions, type Json, listOf, move, stu3ExtensionUrl, valueExtension } from './stu3Extension';

/**
 * What each STU3 type needs beyond the element-by-element walk (conformToR4.ts): renamed elements, re-coded
 * statuses and restructured parts, as HAPI's `conv30_40/resources30_40/<Type>30_40.java` converts them
 * (read there; written here). One function per type, in place; anything a function leaves that R4 does not
 * know is then kept by the walk as a 3.0 extension. docs/stu3-to-r4.md lists the result per type.
 */
type ResourceMap = (r: Json) => void;

const TERMINOLOGY = 'http://terminology.hl7.org/CodeSystem/';
const R4_REQUEST_INTENTS = new Set(['proposal', 'plan', 'directive', 'order', 'original-order', 'reflex-order', 'filler-order', 'instance-order', 'option']);
const concept = (system: string, code: unknown): Json => ({ coding: [{ system, code }] });

/** STU3 `context` (Encounter or EpisodeOfCare) → R4 `encounter`, whatever it points at (as HAPI does). */
const contextToEncounter: ResourceMap = (r) => move(r, 'context', 'encounter');

/** Re-codes `r[key]` by `codes`; a code missing from the table is left for R4 validation to judge. */
function recode(r: Json, key: string, codes: Record<string, string>): void {
  const code = r[key];
  if (typeof code === 'string' && codes[code]) r[key] = codes[code];
}

/** A STU3 code that became a CodeableConcept of `system`; codes outside `allowed` go to the 3.0 extension. */
function codeToConcept(r: Json, key: string, path: string, system: string, allowed: readonly string[]): void {
  const code = r[key];
  if (code === undefined && r[`_${key}`] === undefined) return;
  if (typeof code === 'string' && allowed.includes(code)) r[key] = concept(system, code);
  else {
    addExtensions(r, valueExtension(stu3ExtensionUrl(path), 'code', code, r[`_${key}`]));
    delete r[key];
  }
  delete r[`_${key}`];
}

/** A list of STU3 References → canonical URLs (their `reference` text), as Reference30_40.convertReferenceToCanonical. */
function referencesToCanonicals(r: Json, from: string, to: string): void {
  const refs = listOf<Json>(r[from]);
  if (!refs.length) return;
  const kept = refs.filter((ref) => typeof ref.reference === 'string');
  if (kept.length) r[to] = [...listOf(r[to]), ...kept.map((ref) => ref.reference)];
  if (kept.length === refs.length) delete r[from];
  else r[from] = refs.filter((ref) => typeof ref.reference !== 'string'); // identifier-only ones: the walk keeps them as extensions
}

/** `notDone: true` → status `not-done`; `notDoneReason` → `statusReason` (Procedure, Communication). */
function notDone(r: Json, reasonKey: string): void {
  if (r.notDone === true) r.status = 'not-done';
  delete r.notDone;
  delete r._notDone;
  move(r, reasonKey, 'statusReason');
}

const MAPS: Record<string, ResourceMap> = {
  AllergyIntolerance(r) {
    codeToConcept(r, 'clinicalStatus', 'AllergyIntolerance.clinicalStatus', `${TERMINOLOGY}allergyintolerance-clinical`, ['active', 'inactive', 'resolved']);
    codeToConcept(r, 'verificationStatus', 'AllergyIntolerance.verificationStatus', `${TERMINOLOGY}allergyintolerance-verification`, [
      'unconfirmed',
      'confirmed',
      'refuted',
      'entered-in-error',
    ]);
    move(r, 'assertedDate', 'recordedDate');
  },
  Appointment(r) {
    move(r, 'reason', 'reasonCode');
    move(r, 'indication', 'reasonReference');
    move(r, 'incomingReferral', 'basedOn');
  },
  CarePlan(r) {
    contextToEncounter(r);
    recode(r, 'status', { cancelled: 'revoked', suspended: 'on-hold' });
    // R4 has one author: HAPI keeps the first and drops the rest; they are contributors in R4.
    const [author, ...others] = listOf(r.author);
    if (author !== undefined) r.author = author;
    else delete r.author;
    if (others.length) r.contributor = [...listOf(r.contributor), ...others];
    for (const activity of listOf<Json>(r.activity)) {
      const detail = activity.detail as Json | undefined;
      if (!detail) continue;
      if (detail.category !== undefined) {
        addExtensions(detail, valueExtension(stu3ExtensionUrl('CarePlan.activity.detail.category'), 'CodeableConcept', detail.category));
        delete detail.category;
      }
      if (typeof detail.statusReason === 'string') detail.statusReason = { coding: [{ code: detail.statusReason }] };
      move(detail, 'prohibited', 'doNotPerform');
    }
  },
  CareTeam: contextToEncounter,
  Communication(r) {
    referencesToCanonicals(r, 'definition', 'instantiatesCanonical');
    recode(r, 'status', { suspended: 'on-hold', aborted: 'stopped' });
    notDone(r, 'notDoneReason');
    contextToEncounter(r);
    // STU3 topic (References the communication is about; HAPI drops them) is R4's `about`; R4's topic is a CodeableConcept.
    move(r, 'topic', 'about');
  },
  Composition(r) {
    move(r, 'class', 'category');
  },
  Condition(r) {
    codeToConcept(r, 'clinicalStatus', 'Condition.clinicalStatus', `${TERMINOLOGY}condition-clinical`, ['active', 'recurrence', 'inactive', 'remission', 'resolved']);
    // STU3 `unknown` has no R4 code: HAPI drops it; it is kept in the 3.0 extension.
    codeToConcept(r, 'verificationStatus', 'Condition.verificationStatus', `${TERMINOLOGY}condition-ver-status`, [
      'provisional',
      'differential',
      'confirmed',
      'refuted',
      'entered-in-error',
    ]);
    move(r, 'assertedDate', 'recordedDate');
    contextToEncounter(r);
  },
  Consent(r) {
    move(r, 'consentingParty', 'performer');
    if (typeof r.policyRule === 'string') r.policyRule = { coding: [{ system: 'urn:ietf:rfc:3986', code: r.policyRule }] };
    // The STU3 root rule and its exceptions become R4's provision and nested provisions.
    const provision: Json = {};
    for (const key of ['period', 'actor', 'action', 'securityLabel', 'purpose', 'dataPeriod', 'data']) {
      if (r[key] === undefined) continue;
      provision[key] = r[key];
      delete r[key];
    }
    if (r.except !== undefined) {
      provision.provision = listOf<Json>(r.except).map((except) => {
        const nested = { ...except };
        if (nested.code !== undefined) nested.code = listOf(nested.code).map((coding) => ({ coding: [coding] }));
        return nested;
      });
      delete r.except;
    }
    if (Object.keys(provision).length) r.provision = provision;
  },
  Device(r) {
    const udi = r.udi as Json | undefined;
    if (udi) {
      const { name, _name, ...carrier } = udi;
      r.udiCarrier = [carrier];
      if (name !== undefined) r.deviceName = [...listOf(r.deviceName), { name, ...(_name ? { _name } : {}), type: 'udi-label-name' }];
      delete r.udi;
    }
    move(r, 'model', 'modelNumber');
    if (r.version !== undefined || r._version !== undefined) {
      r.version = [{ ...(r.version !== undefined ? { value: r.version } : {}), ...(r._version ? { _value: r._version } : {}) }];
      delete r._version;
    }
  },
  DeviceRequest(r) {
    // No HAPI converter: the requester as MedicationRequest30_40 converts it.
    agentToRequester(r, 'DeviceRequest');
    // R4 requires intent, a code; STU3's is a CodeableConcept of the same RequestIntent codes. The code it
    // carries becomes R4's intent and the concept itself stays in the 3.0 extension, so nothing is lost.
    const intent = (r.intent as { coding?: { code?: unknown }[] } | undefined)?.coding?.find((c) => typeof c.code === 'string' && R4_REQUEST_INTENTS.has(c.code))?.code;
    if (typeof intent === 'string') {
      addExtensions(r, valueExtension(stu3ExtensionUrl('DeviceRequest.intent'), 'CodeableConcept', r.intent));
      r.intent = intent;
    }
  },
  NutritionOrder(r) {
    // No HAPI converter. R4 requires intent, which STU3 lacks: an STU3 NutritionOrder is an order.
    r.intent ??= 'order';
  },
  ImmunizationRecommendation(r) {
    // No HAPI converter. R4 requires the date the recommendations were made, which STU3 keeps per
    // recommendation: the earliest of those (each also stays in its recommendation's 3.0 extension).
    const dates = listOf<Json>(r.recommendation)
      .map((rec) => rec.date)
      .filter((d): d is string => typeof d === 'string')
      .sort();
    if (r.date === undefined && dates.length) r.date = dates[0];
  },
  DeviceUseStatement(r) {
    move(r, 'indication', 'reasonCode');
  },
  DiagnosticReport(r) {
    contextToEncounter(r);
    // performer {role, actor} → the actor, its role in the 3.0 extension on the reference.
    if (r.performer !== undefined) {
      r.performer = listOf<Json>(r.performer).map((p) => {
        const actor = { ...((p.actor as Json | undefined) ?? {}) };
        if (p.role !== undefined) addExtensions(actor, valueExtension(stu3ExtensionUrl('DiagnosticReport.performer.role'), 'CodeableConcept', p.role));
        return actor;
      });
    }
    move(r, 'image', 'media');
    move(r, 'codedDiagnosis', 'conclusionCode');
  },
  DocumentReference(r) {
    move(r, 'class', 'category');
    move(r, 'indexed', 'date');
    if (r.created !== undefined || r._created !== undefined) {
      addExtensions(r, valueExtension(stu3ExtensionUrl('DocumentReference.created'), 'dateTime', r.created, r._created));
      delete r.created;
      delete r._created;
    }
    const context = r.context as Json | undefined;
    if (context?.related !== undefined) {
      context.related = listOf<Json>(context.related).map((rel) => {
        const ref = { ...((rel.ref as Json | undefined) ?? {}) };
        if (rel.identifier !== undefined && ref.identifier === undefined) ref.identifier = rel.identifier;
        return ref;
      });
    }
  },
  Encounter(r) {
    move(r, 'incomingReferral', 'basedOn');
    move(r, 'reason', 'reasonCode');
    for (const diagnosis of listOf<Json>(r.diagnosis)) move(diagnosis, 'role', 'use');
  },
  Goal(r) {
    const lifecycle: Record<string, string> = {
      'in-progress': 'active',
      'on-target': 'active',
      'ahead-of-target': 'active',
      'behind-target': 'active',
      sustaining: 'active',
      achieved: 'completed',
    };
    // HAPI folds the progress codes into `active`/`completed`; the STU3 code stays in the 3.0 extension.
    if (typeof r.status === 'string' && lifecycle[r.status]) addExtensions(r, valueExtension(stu3ExtensionUrl('Goal.status'), 'code', r.status));
    recode(r, 'status', lifecycle);
    move(r, 'status', 'lifecycleStatus');
  },
  HealthcareService(r) {
    if (r.eligibility !== undefined || r.eligibilityNote !== undefined) {
      r.eligibility = [{ ...(r.eligibility !== undefined ? { code: r.eligibility } : {}), ...(r.eligibilityNote !== undefined ? { comment: r.eligibilityNote } : {}) }];
      delete r.eligibilityNote;
    }
    if (r.programName !== undefined) {
      r.program = [...listOf(r.program), ...listOf<string>(r.programName).map((text) => ({ text }))];
      delete r.programName;
    }
  },
  Immunization(r) {
    if (r.notGiven !== undefined) {
      if (r.notGiven === true) r.status = 'not-done';
      addExtensions(r, valueExtension(stu3ExtensionUrl('Immunization.notGiven'), 'boolean', r.notGiven));
      delete r.notGiven;
      delete r._notGiven;
    }
    move(r, 'date', 'occurrenceDateTime');
    if (r.practitioner !== undefined) {
      r.performer = listOf<Json>(r.practitioner).map(({ role, ...rest }) => ({ ...rest, ...(role !== undefined ? { function: role } : {}) }));
      delete r.practitioner;
    }
    const explanation = r.explanation as Json | undefined;
    if (explanation) {
      if (explanation.reason !== undefined) r.reasonCode = [...listOf(r.reasonCode), ...listOf(explanation.reason)];
      // HAPI drops reasonNotGiven; R4's home for why it was not done is statusReason (one), the rest stay in the extension.
      const [first, ...rest] = listOf(explanation.reasonNotGiven);
      if (first !== undefined) r.statusReason = first;
      delete r.explanation;
      if (rest.length) r.explanation = { reasonNotGiven: rest };
    }
  },
  Medication(r) {
    const extensions: Json[] = [];
    if (r.isBrand !== undefined) extensions.push(valueExtension(stu3ExtensionUrl('Medication.isBrand'), 'boolean', r.isBrand, r._isBrand));
    if (r.isOverTheCounter !== undefined) extensions.push(valueExtension(stu3ExtensionUrl('MedicationOTC'), 'boolean', r.isOverTheCounter, r._isOverTheCounter));
    const pack = r.package as Json | undefined;
    if (pack) {
      if (pack.container !== undefined) extensions.push(valueExtension(stu3ExtensionUrl('Medication.package.container'), 'CodeableConcept', pack.container));
      for (const content of listOf<Json>(pack.content)) {
        const parts: Json[] = [];
        if (content.itemCodeableConcept !== undefined) parts.push(valueExtension(stu3ExtensionUrl('Medication.package.content'), 'CodeableConcept', content.itemCodeableConcept));
        if (content.itemReference !== undefined) parts.push(valueExtension(stu3ExtensionUrl('Medication.package.content'), 'Reference', content.itemReference));
        if (content.amount !== undefined) parts.push(valueExtension(stu3ExtensionUrl('Medication.package.content.amount'), 'Quantity', content.amount));
        extensions.push({ url: stu3ExtensionUrl('Medication.package.content'), extension: parts });
      }
      const [batch, ...moreBatches] = listOf(pack.batch);
      if (batch !== undefined) r.batch = batch;
      for (const more of moreBatches) extensions.push({ url: stu3ExtensionUrl('Medication.package.batch'), extension: batchParts(more as Json) });
    }
    for (const image of listOf(r.image)) extensions.push(valueExtension(stu3ExtensionUrl('MedicationImage'), 'Attachment', image));
    for (const key of ['isBrand', '_isBrand', 'isOverTheCounter', '_isOverTheCounter', 'package', 'image']) delete r[key];
    addExtensions(r, ...extensions);
    for (const ingredient of listOf<Json>(r.ingredient)) move(ingredient, 'amount', 'strength');
  },
  MedicationAdministration(r) {
    referencesToCanonicals(r, 'definition', 'instantiates');
    move(r, 'prescription', 'request');
    // HAPI drops notGiven and reasonNotGiven; R4 says it with status `not-done` and why with statusReason.
    if (r.notGiven === true) r.status = 'not-done';
    delete r.notGiven;
    delete r._notGiven;
    move(r, 'reasonNotGiven', 'statusReason');
  },
  MedicationDispense(r) {
    // HAPI drops notDone and notDoneReason[x]: the reason has an R4 home (statusReason[x]); notDone stays in its 3.0 extension.
    move(r, 'notDoneReasonCodeableConcept', 'statusReasonCodeableConcept');
    move(r, 'notDoneReasonReference', 'statusReasonReference');
  },
  MedicationRequest(r) {
    referencesToCanonicals(r, 'definition', 'instantiatesCanonical');
    contextToEncounter(r);
    agentToRequester(r, 'MedicationRequest');
  },
  MedicationStatement(r) {
    if (r.status !== undefined) addExtensions(r, valueExtension(stu3ExtensionUrl('MedicationStatement.status'), 'string', r.status));
    if (r.taken !== undefined) {
      addExtensions(r, valueExtension(stu3ExtensionUrl('MedicationStatement.taken'), 'string', r.taken));
      if (r.taken === 'n') r.status = 'not-taken';
      else if (r.taken === 'unk') r.status = 'unknown';
      delete r.taken;
      delete r._taken;
    }
    // HAPI appends reasonNotTaken to reasonCode, where a reader takes it for a reason the medication is taken;
    // R4's home for why it is not taken is statusReason (as issue 15 asks).
    if (r.reasonNotTaken !== undefined) {
      r.statusReason = [...listOf(r.statusReason), ...listOf(r.reasonNotTaken)];
      delete r.reasonNotTaken;
    }
  },
  Observation(r) {
    contextToEncounter(r);
    if (r.comment !== undefined) {
      r.note = [...listOf(r.note), { text: r.comment, ...(r._comment ? { _text: r._comment } : {}) }];
      delete r.comment;
      delete r._comment;
    }
    const others: Json[] = [];
    for (const related of listOf<Json>(r.related)) {
      if (related.type === 'has-member') r.hasMember = [...listOf(r.hasMember), related.target];
      else if (related.type === 'derived-from') r.derivedFrom = [...listOf(r.derivedFrom), related.target];
      else others.push(related);
    }
    // sequel-to, replaces, qualified-by, interfered-by have no R4 element (HAPI drops them): the walk keeps them.
    if (others.length) r.related = others;
    else delete r.related;
  },
  Patient(r) {
    const animal = r.animal as Json | undefined;
    if (animal) {
      const parts = (['species', 'breed', 'genderStatus'] as const).filter((k) => animal[k] !== undefined).map((k) => ({ url: k, valueCodeableConcept: animal[k] }));
      addExtensions(r, { url: 'http://hl7.org/fhir/StructureDefinition/patient-animal', extension: [...listOf<Json>(animal.extension), ...parts] });
      delete r.animal;
    }
  },
  Procedure(r) {
    recode(r, 'status', { suspended: 'on-hold', aborted: 'stopped' });
    notDone(r, 'notDoneReason');
    contextToEncounter(r);
    for (const performer of listOf<Json>(r.performer)) move(performer, 'role', 'function');
  },
  ProcedureRequest(r) {
    // R4 renamed the type (ProcedureRequest30_40 → ServiceRequest); `definition`, which HAPI drops, stays in its 3.0 extension.
    r.resourceType = 'ServiceRequest';
    recode(r, 'status', { suspended: 'on-hold', cancelled: 'revoked' });
    contextToEncounter(r);
    agentToRequester(r, 'ProcedureRequest');
  },
  Questionnaire(r) {
    const items = (list: unknown) => {
      for (const item of listOf<Json>(list)) {
        if (item.options !== undefined && typeof (item.options as Json).reference === 'string') {
          item.answerValueSet = (item.options as Json).reference;
          delete item.options;
        }
        move(item, 'option', 'answerOption');
        // initial[x] (one value) → initial[{ value[x] }]
        for (const key of Object.keys(item)) {
          const m = /^(_?)initial([A-Z]\w*)$/.exec(key);
          if (!m) continue;
          const initial = ((item.initial as Json[] | undefined) ?? [{}])[0];
          initial[`${m[1]}value${m[2]}`] = item[key];
          item.initial = [initial];
          delete item[key];
        }
        for (const when of listOf<Json>(item.enableWhen)) {
          if (when.hasAnswer !== undefined) {
            when.operator = 'exists';
            when.answerBoolean = when.hasAnswer;
            delete when.hasAnswer;
          } else if (Object.keys(when).some((k) => k.startsWith('answer'))) when.operator = '=';
        }
        items(item.item);
      }
    };
    items(r.item);
  },
  QuestionnaireResponse(r) {
    const questionnaire = r.questionnaire as Json | undefined;
    if (questionnaire && typeof questionnaire.reference === 'string') r.questionnaire = questionnaire.reference;
    move(r, 'parent', 'partOf');
    contextToEncounter(r);
  },
};

/** STU3 `requester {agent, onBehalfOf}` → the agent Reference, onBehalfOf in its 3.0 extension on it (MedicationRequest30_40). */
function agentToRequester(r: Json, type: string): void {
  const requester = r.requester as Json | undefined;
  if (!requester || requester.agent === undefined) return;
  const agent = { ...(requester.agent as Json) };
  if (requester.onBehalfOf !== undefined) addExtensions(agent, { url: stu3ExtensionUrl(`${type}.requester.onBehalfOf`), valueReference: requester.onBehalfOf });
  r.requester = agent;
}

function batchParts(batch: Json): Json[] {
  const parts: Json[] = [];
  if (batch.lotNumber !== undefined) parts.push({ url: 'lotNumber', valueString: batch.lotNumber });
  if (batch.expirationDate !== undefined) parts.push({ url: 'expirationDate', valueDateTime: batch.expirationDate });
  return parts;
}

/** The type's own STU3 → R4 rules, if it has any. */
export function resourceMap(type: string): ResourceMap | undefined {
  return MAPS[type];
}
