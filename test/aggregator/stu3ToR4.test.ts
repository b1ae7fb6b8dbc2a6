import { stu3ToR4 } from '../../src/aggregator/stu3ToR4';
import { OperationOutcomeError } from '../../src/fhir/outcome';
import type { Resource } from '../../src/fhir/types';
import { assertValidResource } from '../../src/fhir/validation';

/**
 * STU3 → R4 per type (issue 15 item 4), one case per aggregated type and Goal: the STU3 input and the output
 * HAPI's `VersionConvertor_30_40` (conv30_40/resources30_40/<Type>30_40.java) gives for it, read from its
 * source. Where HAPI drops a value, the expected output keeps it in the 3.0 extension
 * `http://hl7.org/fhir/3.0/StructureDefinition/extension-<path>` (marked "kept:" in the case's name).
 */
type Json = Record<string, unknown>;
const X = 'http://hl7.org/fhir/3.0/StructureDefinition/extension-';
const T = 'http://terminology.hl7.org/CodeSystem/';
const patient = { reference: 'Patient/p' };
const encounter = { reference: 'Encounter/e' };
const cc = (code: string, system = 'http://snomed.info/sct') => ({ coding: [{ system, code }] });

const cases: [string, Json, Json][] = [
  [
    'AllergyIntolerance: statuses become CodeableConcepts, assertedDate → recordedDate',
    {
      resourceType: 'AllergyIntolerance',
      clinicalStatus: 'active',
      verificationStatus: 'confirmed',
      patient,
      assertedDate: '2020-01-02',
      reaction: [{ manifestation: [cc('1')], severity: 'mild' }],
    },
    {
      resourceType: 'AllergyIntolerance',
      clinicalStatus: { coding: [{ system: `${T}allergyintolerance-clinical`, code: 'active' }] },
      verificationStatus: { coding: [{ system: `${T}allergyintolerance-verification`, code: 'confirmed' }] },
      patient,
      recordedDate: '2020-01-02',
      reaction: [{ manifestation: [cc('1')], severity: 'mild' }],
    },
  ],
  [
    'Appointment: reason → reasonCode, indication → reasonReference, incomingReferral → basedOn',
    {
      resourceType: 'Appointment',
      status: 'booked',
      start: '2020-01-01T09:00:00Z',
      end: '2020-01-01T09:30:00Z',
      reason: [cc('r')],
      indication: [{ reference: 'Condition/c' }],
      incomingReferral: [{ reference: 'ReferralRequest/rr' }],
      participant: [{ actor: patient, status: 'accepted' }],
    },
    {
      resourceType: 'Appointment',
      status: 'booked',
      start: '2020-01-01T09:00:00Z',
      end: '2020-01-01T09:30:00Z',
      reasonCode: [cc('r')],
      reasonReference: [{ reference: 'Condition/c' }],
      basedOn: [{ reference: 'ReferralRequest/rr' }],
      participant: [{ actor: patient, status: 'accepted' }],
    },
  ],
  [
    'CarePlan: status re-coded, context → encounter, first author, activity.detail category/statusReason/prohibited; kept: other authors as contributors, definition',
    {
      resourceType: 'CarePlan',
      status: 'suspended',
      intent: 'plan',
      subject: patient,
      context: encounter,
      author: [{ reference: 'Practitioner/a' }, { reference: 'Practitioner/b' }],
      definition: [{ reference: 'PlanDefinition/pd' }],
      activity: [{ detail: { category: cc('cat'), code: cc('x'), status: 'in-progress', statusReason: 'waiting', prohibited: false } }],
    },
    {
      resourceType: 'CarePlan',
      status: 'on-hold',
      intent: 'plan',
      subject: patient,
      encounter,
      author: { reference: 'Practitioner/a' },
      contributor: [{ reference: 'Practitioner/b' }],
      activity: [
        {
          detail: {
            code: cc('x'),
            status: 'in-progress',
            statusReason: { coding: [{ code: 'waiting' }] },
            doNotPerform: false,
            extension: [{ url: `${X}CarePlan.activity.detail.category`, valueCodeableConcept: cc('cat') }],
          },
        },
      ],
      extension: [{ url: `${X}CarePlan.definition`, valueReference: { reference: 'PlanDefinition/pd' } }],
    },
  ],
  [
    'CareTeam: context → encounter, participant.role becomes a list',
    { resourceType: 'CareTeam', status: 'active', subject: patient, context: encounter, participant: [{ role: cc('role'), member: { reference: 'Practitioner/a' } }] },
    { resourceType: 'CareTeam', status: 'active', subject: patient, encounter, participant: [{ role: [cc('role')], member: { reference: 'Practitioner/a' } }] },
  ],
  [
    'ChargeItem (no HAPI converter): same-named elements copied; kept: what R4 lacks',
    { resourceType: 'ChargeItem', status: 'billable', code: cc('c'), subject: patient, context: encounter, participant: [{ actor: { reference: 'Practitioner/a' } }] },
    {
      resourceType: 'ChargeItem',
      status: 'billable',
      code: cc('c'),
      subject: patient,
      context: encounter,
      extension: [{ url: `${X}ChargeItem.participant`, extension: [{ url: 'actor', valueReference: { reference: 'Practitioner/a' } }] }],
    },
  ],
  [
    'Communication: definition → instantiatesCanonical, notDone → not-done + statusReason, context → encounter; kept: topic as about',
    {
      resourceType: 'Communication',
      status: 'completed',
      definition: [{ reference: 'http://example.org/PlanDefinition/x' }],
      notDone: true,
      notDoneReason: cc('nd'),
      subject: patient,
      context: encounter,
      topic: [{ reference: 'Condition/c' }],
    },
    {
      resourceType: 'Communication',
      status: 'not-done',
      instantiatesCanonical: ['http://example.org/PlanDefinition/x'],
      statusReason: cc('nd'),
      subject: patient,
      encounter,
      about: [{ reference: 'Condition/c' }],
    },
  ],
  [
    'Composition: class → category, attester.mode no longer repeats; kept: the other modes',
    {
      resourceType: 'Composition',
      status: 'final',
      type: cc('t'),
      class: cc('k'),
      subject: patient,
      date: '2020-01-01',
      author: [{ reference: 'Practitioner/a' }],
      title: 'Note',
      attester: [{ mode: ['legal', 'professional'], party: { reference: 'Practitioner/a' } }],
    },
    {
      resourceType: 'Composition',
      status: 'final',
      type: cc('t'),
      category: [cc('k')],
      subject: patient,
      date: '2020-01-01',
      author: [{ reference: 'Practitioner/a' }],
      title: 'Note',
      attester: [{ mode: 'legal', party: { reference: 'Practitioner/a' }, extension: [{ url: `${X}Composition.attester.mode`, valueCode: 'professional' }] }],
    },
  ],
  [
    'Condition: statuses become CodeableConcepts, assertedDate → recordedDate, context → encounter, stage a list; kept: verificationStatus unknown',
    {
      resourceType: 'Condition',
      clinicalStatus: 'active',
      verificationStatus: 'unknown',
      code: cc('c'),
      subject: patient,
      context: encounter,
      assertedDate: '2020-02-02',
      stage: { summary: cc('s') },
    },
    {
      resourceType: 'Condition',
      clinicalStatus: { coding: [{ system: `${T}condition-clinical`, code: 'active' }] },
      code: cc('c'),
      subject: patient,
      encounter,
      recordedDate: '2020-02-02',
      stage: [{ summary: cc('s') }],
      extension: [{ url: `${X}Condition.verificationStatus`, valueCode: 'unknown' }],
    },
  ],
  [
    'Consent: consentingParty → performer, policyRule a CodeableConcept, the rule and its exceptions → provision',
    {
      resourceType: 'Consent',
      status: 'active',
      patient,
      identifier: { system: 'urn:x', value: '1' },
      consentingParty: [patient],
      policyRule: 'http://example.org/policy',
      period: { start: '2020-01-01' },
      except: [{ type: 'deny', code: [{ system: 'urn:c', code: 'x' }] }],
    },
    {
      resourceType: 'Consent',
      status: 'active',
      patient,
      identifier: [{ system: 'urn:x', value: '1' }],
      performer: [patient],
      policyRule: { coding: [{ system: 'urn:ietf:rfc:3986', code: 'http://example.org/policy' }] },
      provision: { period: { start: '2020-01-01' }, provision: [{ type: 'deny', code: [{ coding: [{ system: 'urn:c', code: 'x' }] }] }] },
    },
  ],
  [
    'Device: udi → udiCarrier and a udi-label-name deviceName, model → modelNumber, version → version[{value}]',
    { resourceType: 'Device', udi: { deviceIdentifier: '0123', name: 'Pump', carrierHRF: '(01)0123' }, model: 'M1', version: '2.1', patient },
    {
      resourceType: 'Device',
      udiCarrier: [{ deviceIdentifier: '0123', carrierHRF: '(01)0123' }],
      deviceName: [{ name: 'Pump', type: 'udi-label-name' }],
      modelNumber: 'M1',
      version: [{ value: '2.1' }],
      patient,
    },
  ],
  [
    'DeviceRequest (no HAPI converter): same-named elements copied, requester.agent → requester, intent → its code (R4 requires it); kept: context, and the intent concept',
    {
      resourceType: 'DeviceRequest',
      status: 'active',
      intent: cc('order'),
      codeReference: { reference: 'Device/d' },
      subject: patient,
      context: encounter,
      requester: { agent: { reference: 'Practitioner/a' } },
    },
    {
      resourceType: 'DeviceRequest',
      status: 'active',
      intent: 'order',
      codeReference: { reference: 'Device/d' },
      subject: patient,
      requester: { reference: 'Practitioner/a' },
      extension: [
        { url: `${X}DeviceRequest.intent`, valueCodeableConcept: cc('order') },
        { url: `${X}DeviceRequest.context`, valueReference: encounter },
      ],
    },
  ],
  [
    'DeviceUseStatement: indication → reasonCode',
    { resourceType: 'DeviceUseStatement', status: 'active', subject: patient, device: { reference: 'Device/d' }, indication: [cc('i')] },
    { resourceType: 'DeviceUseStatement', status: 'active', subject: patient, device: { reference: 'Device/d' }, reasonCode: [cc('i')] },
  ],
  [
    'DiagnosticReport: category a list, context → encounter, performer role in an extension on the actor, image → media, codedDiagnosis → conclusionCode',
    {
      resourceType: 'DiagnosticReport',
      status: 'final',
      category: cc('LAB'),
      code: cc('d'),
      subject: patient,
      context: encounter,
      performer: [{ role: cc('role'), actor: { reference: 'Practitioner/a' } }],
      image: [{ comment: 'c', link: { reference: 'Media/m' } }],
      codedDiagnosis: [cc('dx')],
    },
    {
      resourceType: 'DiagnosticReport',
      status: 'final',
      category: [cc('LAB')],
      code: cc('d'),
      subject: patient,
      encounter,
      performer: [{ reference: 'Practitioner/a', extension: [{ url: `${X}DiagnosticReport.performer.role`, valueCodeableConcept: cc('role') }] }],
      media: [{ comment: 'c', link: { reference: 'Media/m' } }],
      conclusionCode: [cc('dx')],
    },
  ],
  [
    'DocumentReference: class → category, indexed → date, created in its extension, context.related → references',
    {
      resourceType: 'DocumentReference',
      status: 'current',
      type: cc('t'),
      class: cc('k'),
      subject: patient,
      created: '2020-01-01T10:00:00Z',
      indexed: '2020-01-02T10:00:00Z',
      content: [{ attachment: { url: 'http://x/doc' } }],
      context: { encounter, related: [{ ref: { reference: 'Observation/o' } }] },
    },
    {
      resourceType: 'DocumentReference',
      status: 'current',
      type: cc('t'),
      category: [cc('k')],
      subject: patient,
      date: '2020-01-02T10:00:00Z',
      content: [{ attachment: { url: 'http://x/doc' } }],
      context: { encounter: [encounter], related: [{ reference: 'Observation/o' }] },
      extension: [{ url: `${X}DocumentReference.created`, valueDateTime: '2020-01-01T10:00:00Z' }],
    },
  ],
  [
    'Encounter: incomingReferral → basedOn, reason → reasonCode, diagnosis.role → use, appointment a list',
    {
      resourceType: 'Encounter',
      status: 'finished',
      class: { system: 'http://hl7.org/fhir/v3/ActCode', code: 'AMB' },
      subject: patient,
      incomingReferral: [{ reference: 'ReferralRequest/r' }],
      reason: [cc('r')],
      diagnosis: [{ condition: { reference: 'Condition/c' }, role: cc('AD'), rank: 1 }],
      appointment: { reference: 'Appointment/a' },
    },
    {
      resourceType: 'Encounter',
      status: 'finished',
      class: { system: 'http://hl7.org/fhir/v3/ActCode', code: 'AMB' },
      subject: patient,
      basedOn: [{ reference: 'ReferralRequest/r' }],
      reasonCode: [cc('r')],
      diagnosis: [{ condition: { reference: 'Condition/c' }, use: cc('AD'), rank: 1 }],
      appointment: [{ reference: 'Appointment/a' }],
    },
  ],
  [
    'EpisodeOfCare: unchanged',
    { resourceType: 'EpisodeOfCare', status: 'active', patient, managingOrganization: { reference: 'Organization/o' } },
    { resourceType: 'EpisodeOfCare', status: 'active', patient, managingOrganization: { reference: 'Organization/o' } },
  ],
  ['Flag: unchanged', { resourceType: 'Flag', status: 'active', code: cc('f'), subject: patient }, { resourceType: 'Flag', status: 'active', code: cc('f'), subject: patient }],
  [
    'Goal: status → lifecycleStatus (progress codes fold into active), target a list; kept: the STU3 status code',
    { resourceType: 'Goal', status: 'on-target', description: { text: 'lose weight' }, subject: patient, target: { measure: cc('m'), dueDate: '2021-01-01' } },
    {
      resourceType: 'Goal',
      lifecycleStatus: 'active',
      description: { text: 'lose weight' },
      subject: patient,
      target: [{ measure: cc('m'), dueDate: '2021-01-01' }],
      extension: [{ url: `${X}Goal.status`, valueCode: 'on-target' }],
    },
  ],
  [
    'HealthcareService: category a list, eligibility + eligibilityNote → eligibility, programName → program',
    { resourceType: 'HealthcareService', category: cc('cat'), eligibility: cc('e'), eligibilityNote: 'adults', programName: ['P1'] },
    { resourceType: 'HealthcareService', category: [cc('cat')], eligibility: [{ code: cc('e'), comment: 'adults' }], program: [{ text: 'P1' }] },
  ],
  [
    'Immunization: notGiven → not-done + its extension, date → occurrenceDateTime, practitioner → performer, explanation → reasonCode/statusReason; kept: vaccinationProtocol',
    {
      resourceType: 'Immunization',
      status: 'completed',
      notGiven: true,
      vaccineCode: cc('v', 'http://hl7.org/fhir/sid/cvx'),
      patient,
      date: '2020-03-03',
      primarySource: true,
      practitioner: [{ role: cc('AP'), actor: { reference: 'Practitioner/a' } }],
      explanation: { reason: [cc('why')], reasonNotGiven: [cc('refused')] },
      vaccinationProtocol: [{ doseSequence: 1, targetDisease: [cc('t')], doseStatus: cc('count') }],
    },
    {
      resourceType: 'Immunization',
      status: 'not-done',
      vaccineCode: cc('v', 'http://hl7.org/fhir/sid/cvx'),
      patient,
      occurrenceDateTime: '2020-03-03',
      primarySource: true,
      performer: [{ actor: { reference: 'Practitioner/a' }, function: cc('AP') }],
      reasonCode: [cc('why')],
      statusReason: cc('refused'),
      extension: [
        { url: `${X}Immunization.notGiven`, valueBoolean: true },
        {
          url: `${X}Immunization.vaccinationProtocol`,
          extension: [
            { url: 'doseSequence', valuePositiveInt: 1 },
            { url: 'targetDisease', valueCodeableConcept: cc('t') },
            { url: 'doseStatus', valueCodeableConcept: cc('count') },
          ],
        },
      ],
    },
  ],
  [
    'Immunization without a date: no occurrence is invented (as HAPI)',
    { resourceType: 'Immunization', status: 'completed', notGiven: false, vaccineCode: cc('v'), patient, primarySource: true },
    {
      resourceType: 'Immunization',
      status: 'completed',
      vaccineCode: cc('v'),
      patient,
      primarySource: true,
      extension: [{ url: `${X}Immunization.notGiven`, valueBoolean: false }],
    },
  ],
  [
    'ImmunizationRecommendation (no HAPI converter): same-named elements copied, date (required in R4) from the earliest recommendation; kept: what R4 reshaped',
    { resourceType: 'ImmunizationRecommendation', patient, recommendation: [{ date: '2020-01-01', vaccineCode: cc('v'), forecastStatus: cc('due') }] },
    {
      resourceType: 'ImmunizationRecommendation',
      patient,
      date: '2020-01-01',
      recommendation: [
        { forecastStatus: cc('due'), vaccineCode: [cc('v')], extension: [{ url: `${X}ImmunizationRecommendation.recommendation.date`, valueDateTime: '2020-01-01' }] },
      ],
    },
  ],
  [
    'Location: unchanged',
    { resourceType: 'Location', status: 'active', name: 'Ward 1', position: { longitude: -1.5, latitude: 52.1 } },
    { resourceType: 'Location', status: 'active', name: 'Ward 1', position: { longitude: -1.5, latitude: 52.1 } },
  ],
  [
    'Medication: isBrand, isOverTheCounter, package and image in HAPI’s extensions, first batch → batch, ingredient.amount → strength',
    {
      resourceType: 'Medication',
      code: cc('m', 'http://www.nlm.nih.gov/research/umls/rxnorm'),
      isBrand: true,
      isOverTheCounter: false,
      ingredient: [{ itemCodeableConcept: cc('i'), amount: { numerator: { value: 5, unit: 'mg' }, denominator: { value: 1 } } }],
      package: {
        container: cc('box'),
        content: [{ itemCodeableConcept: cc('c'), amount: { value: 10 } }],
        batch: [{ lotNumber: 'L1', expirationDate: '2022-01-01' }],
      },
      image: [{ url: 'http://x/img.png' }],
    },
    {
      resourceType: 'Medication',
      code: cc('m', 'http://www.nlm.nih.gov/research/umls/rxnorm'),
      ingredient: [{ itemCodeableConcept: cc('i'), strength: { numerator: { value: 5, unit: 'mg' }, denominator: { value: 1 } } }],
      batch: { lotNumber: 'L1', expirationDate: '2022-01-01' },
      extension: [
        { url: `${X}Medication.isBrand`, valueBoolean: true },
        { url: `${X}MedicationOTC`, valueBoolean: false },
        { url: `${X}Medication.package.container`, valueCodeableConcept: cc('box') },
        {
          url: `${X}Medication.package.content`,
          extension: [
            { url: `${X}Medication.package.content`, valueCodeableConcept: cc('c') },
            { url: `${X}Medication.package.content.amount`, valueQuantity: { value: 10 } },
          ],
        },
        { url: `${X}MedicationImage`, valueAttachment: { url: 'http://x/img.png' } },
      ],
    },
  ],
  [
    'MedicationAdministration: definition → instantiates, prescription → request, dosage.rate kept; notGiven → not-done + statusReason',
    {
      resourceType: 'MedicationAdministration',
      status: 'completed',
      definition: [{ reference: 'http://example.org/PlanDefinition/p' }],
      medicationCodeableConcept: cc('m'),
      subject: patient,
      effectiveDateTime: '2020-01-01',
      prescription: { reference: 'MedicationRequest/r' },
      notGiven: true,
      reasonNotGiven: [cc('refused')],
    },
    {
      resourceType: 'MedicationAdministration',
      status: 'not-done',
      instantiates: ['http://example.org/PlanDefinition/p'],
      medicationCodeableConcept: cc('m'),
      subject: patient,
      effectiveDateTime: '2020-01-01',
      request: { reference: 'MedicationRequest/r' },
      statusReason: [cc('refused')],
    },
  ],
  [
    'MedicationDispense: dosageInstruction dose → doseAndRate, notDoneReason → statusReason; kept: notDone',
    {
      resourceType: 'MedicationDispense',
      status: 'completed',
      medicationCodeableConcept: cc('m'),
      subject: patient,
      context: encounter,
      notDone: true,
      notDoneReasonCodeableConcept: cc('oos'),
      dosageInstruction: [{ text: 'once', doseQuantity: { value: 1, unit: 'tab' } }],
    },
    {
      resourceType: 'MedicationDispense',
      status: 'completed',
      medicationCodeableConcept: cc('m'),
      subject: patient,
      context: encounter,
      statusReasonCodeableConcept: cc('oos'),
      dosageInstruction: [{ text: 'once', doseAndRate: [{ doseQuantity: { value: 1, unit: 'tab' } }] }],
      extension: [{ url: `${X}MedicationDispense.notDone`, valueBoolean: true }],
    },
  ],
  [
    'MedicationRequest: definition → instantiatesCanonical, category a list, context → encounter, requester.agent → requester with onBehalfOf in its extension',
    {
      resourceType: 'MedicationRequest',
      status: 'active',
      intent: 'order',
      definition: [{ reference: 'http://example.org/ActivityDefinition/a' }],
      category: cc('outpatient'),
      medicationCodeableConcept: cc('m'),
      subject: patient,
      context: encounter,
      requester: { agent: { reference: 'Practitioner/a' }, onBehalfOf: { reference: 'Organization/o' } },
      dosageInstruction: [{ sequence: 1, doseQuantity: { value: 2 }, rateRatio: { numerator: { value: 1 }, denominator: { value: 1 } } }],
    },
    {
      resourceType: 'MedicationRequest',
      status: 'active',
      intent: 'order',
      instantiatesCanonical: ['http://example.org/ActivityDefinition/a'],
      category: [cc('outpatient')],
      medicationCodeableConcept: cc('m'),
      subject: patient,
      encounter,
      requester: { reference: 'Practitioner/a', extension: [{ url: `${X}MedicationRequest.requester.onBehalfOf`, valueReference: { reference: 'Organization/o' } }] },
      dosageInstruction: [{ sequence: 1, doseAndRate: [{ doseQuantity: { value: 2 }, rateRatio: { numerator: { value: 1 }, denominator: { value: 1 } } }] }],
    },
  ],
  [
    'MedicationStatement: taken n → not-taken, status and taken in their extensions, context stays; reasonNotTaken → statusReason (HAPI: reasonCode)',
    {
      resourceType: 'MedicationStatement',
      status: 'active',
      taken: 'n',
      reasonNotTaken: [cc('nt')],
      medicationCodeableConcept: cc('m'),
      subject: patient,
      context: encounter,
    },
    {
      resourceType: 'MedicationStatement',
      status: 'not-taken',
      statusReason: [cc('nt')],
      medicationCodeableConcept: cc('m'),
      subject: patient,
      context: encounter,
      extension: [
        { url: `${X}MedicationStatement.status`, valueString: 'active' },
        { url: `${X}MedicationStatement.taken`, valueString: 'n' },
      ],
    },
  ],
  [
    'NutritionOrder (no HAPI converter): same-named elements copied, intent (required in R4) order',
    { resourceType: 'NutritionOrder', status: 'active', patient, dateTime: '2020-01-01', encounter },
    { resourceType: 'NutritionOrder', status: 'active', intent: 'order', patient, dateTime: '2020-01-01', encounter },
  ],
  [
    'Observation: context → encounter, comment → note, interpretation a list, related → hasMember/derivedFrom; kept: other relations',
    {
      resourceType: 'Observation',
      status: 'final',
      code: cc('o', 'http://loinc.org'),
      subject: patient,
      context: encounter,
      valueQuantity: { value: 1.5, unit: 'mmol/L' },
      interpretation: cc('H'),
      comment: 'fasting',
      related: [
        { type: 'has-member', target: { reference: 'Observation/a' } },
        { type: 'derived-from', target: { reference: 'Observation/b' } },
        { type: 'replaces', target: { reference: 'Observation/c' } },
      ],
    },
    {
      resourceType: 'Observation',
      status: 'final',
      code: cc('o', 'http://loinc.org'),
      subject: patient,
      encounter,
      valueQuantity: { value: 1.5, unit: 'mmol/L' },
      interpretation: [cc('H')],
      note: [{ text: 'fasting' }],
      hasMember: [{ reference: 'Observation/a' }],
      derivedFrom: [{ reference: 'Observation/b' }],
      extension: [
        {
          url: `${X}Observation.related`,
          extension: [
            { url: 'type', valueCode: 'replaces' },
            { url: 'target', valueReference: { reference: 'Observation/c' } },
          ],
        },
      ],
    },
  ],
  [
    'Organization: unchanged',
    { resourceType: 'Organization', identifier: [{ system: 'urn:ods', value: 'X1' }], name: 'Trust' },
    { resourceType: 'Organization', identifier: [{ system: 'urn:ods', value: 'X1' }], name: 'Trust' },
  ],
  [
    'Patient: animal → the patient-animal extension',
    { resourceType: 'Patient', name: [{ family: 'Rex' }], animal: { species: cc('dog'), breed: cc('lab') } },
    {
      resourceType: 'Patient',
      name: [{ family: 'Rex' }],
      extension: [
        {
          url: 'http://hl7.org/fhir/StructureDefinition/patient-animal',
          extension: [
            { url: 'species', valueCodeableConcept: cc('dog') },
            { url: 'breed', valueCodeableConcept: cc('lab') },
          ],
        },
      ],
    },
  ],
  [
    'Person: unchanged',
    { resourceType: 'Person', name: [{ family: 'Smith' }], link: [{ target: patient }] },
    { resourceType: 'Person', name: [{ family: 'Smith' }], link: [{ target: patient }] },
  ],
  [
    'Practitioner: unchanged',
    { resourceType: 'Practitioner', identifier: [{ system: 'urn:gmc', value: '1' }], name: [{ family: 'Who' }] },
    { resourceType: 'Practitioner', identifier: [{ system: 'urn:gmc', value: '1' }], name: [{ family: 'Who' }] },
  ],
  [
    'PractitionerRole: unchanged',
    { resourceType: 'PractitionerRole', practitioner: { reference: 'Practitioner/a' }, organization: { reference: 'Organization/o' }, code: [cc('gp')] },
    { resourceType: 'PractitionerRole', practitioner: { reference: 'Practitioner/a' }, organization: { reference: 'Organization/o' }, code: [cc('gp')] },
  ],
  [
    'Procedure: aborted → stopped, notDone → not-done + statusReason, context → encounter, performer.role → function; kept: definition',
    {
      resourceType: 'Procedure',
      status: 'aborted',
      code: cc('p'),
      subject: patient,
      context: encounter,
      performer: [{ role: cc('surgeon'), actor: { reference: 'Practitioner/a' } }],
      definition: [{ reference: 'PlanDefinition/pd' }],
    },
    {
      resourceType: 'Procedure',
      status: 'stopped',
      code: cc('p'),
      subject: patient,
      encounter,
      performer: [{ function: cc('surgeon'), actor: { reference: 'Practitioner/a' } }],
      extension: [{ url: `${X}Procedure.definition`, valueReference: { reference: 'PlanDefinition/pd' } }],
    },
  ],
  [
    'Procedure not done: status not-done, notDoneReason → statusReason; suspended → on-hold otherwise',
    { resourceType: 'Procedure', status: 'suspended', notDone: true, notDoneReason: cc('why'), subject: patient },
    { resourceType: 'Procedure', status: 'not-done', statusReason: cc('why'), subject: patient },
  ],
  [
    'Questionnaire: item.options → answerValueSet, option → answerOption, enableWhen answer/hasAnswer → operator, initial[x] → initial',
    {
      resourceType: 'Questionnaire',
      status: 'active',
      item: [
        { linkId: '1', type: 'choice', options: { reference: 'http://example.org/ValueSet/yn' } },
        { linkId: '2', type: 'choice', option: [{ valueString: 'a' }], enableWhen: [{ question: '1', answerString: 'yes' }] },
        { linkId: '3', type: 'string', enableWhen: [{ question: '1', hasAnswer: true }], initialString: 'none' },
      ],
    },
    {
      resourceType: 'Questionnaire',
      status: 'active',
      item: [
        { linkId: '1', type: 'choice', answerValueSet: 'http://example.org/ValueSet/yn' },
        { linkId: '2', type: 'choice', answerOption: [{ valueString: 'a' }], enableWhen: [{ question: '1', answerString: 'yes', operator: '=' }] },
        { linkId: '3', type: 'string', enableWhen: [{ question: '1', operator: 'exists', answerBoolean: true }], initial: [{ valueString: 'none' }] },
      ],
    },
  ],
  [
    'QuestionnaireResponse: questionnaire → canonical, parent → partOf, context → encounter',
    {
      resourceType: 'QuestionnaireResponse',
      questionnaire: { reference: 'http://example.org/Questionnaire/q' },
      status: 'completed',
      subject: patient,
      parent: [{ reference: 'Procedure/p' }],
      context: encounter,
    },
    {
      resourceType: 'QuestionnaireResponse',
      questionnaire: 'http://example.org/Questionnaire/q',
      status: 'completed',
      subject: patient,
      partOf: [{ reference: 'Procedure/p' }],
      encounter,
    },
  ],
  [
    'RelatedPerson: unchanged',
    { resourceType: 'RelatedPerson', patient, relationship: cc('mother'), name: [{ family: 'Smith' }] },
    { resourceType: 'RelatedPerson', patient, relationship: [cc('mother')], name: [{ family: 'Smith' }] },
  ],
  [
    'ProcedureRequest → ServiceRequest: suspended → on-hold, context → encounter, requester.agent → requester, performer → [performer]; kept: definition, requester.onBehalfOf',
    {
      resourceType: 'ProcedureRequest',
      status: 'suspended',
      intent: 'order',
      priority: 'urgent',
      code: cc('73761001'),
      subject: patient,
      context: encounter,
      occurrenceDateTime: '2020-02-01',
      authoredOn: '2020-01-15',
      definition: [{ reference: 'PlanDefinition/pd' }],
      requester: { agent: { reference: 'Practitioner/dr' }, onBehalfOf: { reference: 'Organization/o' } },
      performer: { reference: 'Practitioner/surgeon' },
      reasonReference: [{ reference: 'Condition/c' }],
      note: [{ text: 'fasting' }],
    },
    {
      resourceType: 'ServiceRequest',
      status: 'on-hold',
      intent: 'order',
      priority: 'urgent',
      code: cc('73761001'),
      subject: patient,
      encounter,
      occurrenceDateTime: '2020-02-01',
      authoredOn: '2020-01-15',
      requester: { reference: 'Practitioner/dr', extension: [{ url: `${X}ProcedureRequest.requester.onBehalfOf`, valueReference: { reference: 'Organization/o' } }] },
      performer: [{ reference: 'Practitioner/surgeon' }],
      reasonReference: [{ reference: 'Condition/c' }],
      note: [{ text: 'fasting' }],
      extension: [{ url: `${X}ProcedureRequest.definition`, valueReference: { reference: 'PlanDefinition/pd' } }],
    },
  ],
  [
    'Specimen: unchanged',
    { resourceType: 'Specimen', status: 'available', type: cc('blood'), subject: patient, collection: { collectedDateTime: '2020-01-01' } },
    { resourceType: 'Specimen', status: 'available', type: cc('blood'), subject: patient, collection: { collectedDateTime: '2020-01-01' } },
  ],
];

describe('STU3 → R4 as HAPI converts it', () => {
  test.each(cases)('%s', (_name, input, expected) => {
    const before = JSON.stringify(input);
    expect(stu3ToR4(input as Resource)).toEqual(expected);
    expect(JSON.stringify(input)).toBe(before); // the input is not changed
  });

  test.each(cases.filter(([name]) => !name.startsWith('Goal') && !name.startsWith('Immunization without') && !name.startsWith('Consent')))('%s: valid R4', (_name, input) => {
    const mapped = stu3ToR4(input as Resource);
    try {
      assertValidResource('R4', mapped);
    } catch (err) {
      throw new Error(`${(err as OperationOutcomeError).message}\n${JSON.stringify(mapped)}`, { cause: err });
    }
  });

  test('contained STU3 resources are converted too', () => {
    const mapped = stu3ToR4({
      resourceType: 'MedicationStatement',
      status: 'active',
      taken: 'y',
      subject: patient,
      medicationReference: { reference: '#m' },
      contained: [{ resourceType: 'Medication', id: 'm', isBrand: false }],
    } as Resource) as Json;
    expect(mapped.contained).toEqual([{ resourceType: 'Medication', id: 'm', extension: [{ url: `${X}Medication.isBrand`, valueBoolean: false }] }]);
  });

  test('primitive extensions travel with their value', () => {
    const mapped = stu3ToR4({
      resourceType: 'Condition',
      subject: patient,
      assertedDate: '2020-01-01',
      _assertedDate: { extension: [{ url: 'http://example.org/precision', valueCode: 'day' }] },
    } as Resource) as Json;
    expect(mapped.recordedDate).toBe('2020-01-01');
    expect(mapped._recordedDate).toEqual({ extension: [{ url: 'http://example.org/precision', valueCode: 'day' }] });
  });
});
