import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildSchema, type GraphQLEnumType, type GraphQLObjectType } from 'graphql';
import { sdl, SCHEMA_FILES } from '../../scripts/emit-schema';
import type { FhirVersion } from '../../src/fhir/types';

/** The committed SDL in schema/ is the contract: it must match what the server serves, for each FHIR version. */
test.each(Object.entries(SCHEMA_FILES) as [FhirVersion, string][])(
  'the %s contract in schema/ is up to date (run `npm run emit-schema` after changing the schema)',
  (version, file) => {
    const committed = readFileSync(file, 'utf8');
    const current = sdl(version);
    if (committed !== current) {
      const a = committed.split('\n');
      const b = current.split('\n');
      const line = a.findIndex((l, i) => l !== b[i]);
      throw new Error(`${path.basename(file)} is stale from line ${line + 1}: committed '${a[line]}', now '${b[line]}'`);
    }
  },
);

test("the STU3 contract has STU3's shapes and no _endpoint", () => {
  const schema = buildSchema(sdl('STU3'));
  const condition = (schema.getType('Condition') as GraphQLObjectType).getFields();
  expect(String(condition.assertedDate.type)).toBe('String');
  expect(String(condition.clinicalStatus.type)).toBe('String');
  expect(condition.recordedDate).toBeUndefined();
  expect(schema.getType('ProcedureRequest')).toBeDefined();
  const query = schema.getQueryType()!.getFields();
  expect(query.ConditionList.args.map((a) => a.name)).toEqual(expect.arrayContaining(['asserted_date', 'context']));
  expect(query.ConditionList.args.map((a) => a.name)).not.toEqual(expect.arrayContaining(['recorded_date']));
  expect(query.Condition.args.map((a) => `${a.name}: ${a.type}`)).toEqual(['id: ID!']);
  expect(
    schema
      .getMutationType()!
      .getFields()
      .ProcedureRequestCreate.args.map((a) => `${a.name}: ${a.type}`),
  ).toEqual(['res: ProcedureRequestInput!']);
  expect(schema.getSubscriptionType()).toBeUndefined();
});

test('the contract has the FHIR GraphQL shapes clients rely on', () => {
  const schema = buildSchema(sdl());
  const query = schema.getQueryType()!.getFields();
  expect(query.Patient.args.map((a) => `${a.name}: ${a.type}`)).toEqual(['id: ID!', '_endpoint: ID']);
  expect(query.PatientList.args.map((a) => a.name)).toEqual(expect.arrayContaining(['identifier', 'birthdate', 'general_practitioner', '_count', '_cursor', '_sort']));
  expect(String(query.PatientConnection.type)).toBe('PatientConnection');
  const mutation = schema.getMutationType()!.getFields();
  expect(mutation.PatientCreate.args.map((a) => `${a.name}: ${a.type}`)).toEqual(['res: PatientInput!', '_endpoint: ID']);
  const observation = schema.getType('Observation') as GraphQLObjectType;
  expect(String(observation.getFields().valueQuantity.type)).toBe('Quantity');
  expect(observation.getInterfaces().map((i) => i.name)).toEqual(['Resource']);
  const patient = (schema.getType('Patient') as GraphQLObjectType).getFields();
  expect(String(patient._birthDate.type)).toBe('Element');
  expect(patient.ObservationList.args.map((a) => `${a.name}: ${a.type}`)).toEqual(expect.arrayContaining(['_reference: Patient_Observation_reference!', '_count: Int']));
  expect(
    (schema.getType('Patient_Observation_reference') as GraphQLEnumType)
      .getValues()
      .map((v) => v.name)
      .sort(),
  ).toEqual(['focus', 'patient', 'performer', 'subject']);
  expect((schema.getType('Reference') as GraphQLObjectType).getFields().resource.args.map((a) => `${a.name}: ${a.type}`)).toEqual(['type: ResourceType', 'optional: Boolean']);
  expect((schema.getType('ResourceType') as GraphQLEnumType).getValues()).toHaveLength(146);
  expect(schema.getDirectives().map((d) => d.name)).toEqual(expect.arrayContaining(['flatten', 'first', 'singleton', 'slice']));
});

test('our own types never reshape a FHIR type: Endpoint is the R4 resource, the admin one is CustomerEndpoint', () => {
  const schema = buildSchema(sdl());
  const endpoint = (schema.getType('Endpoint') as GraphQLObjectType).getFields();
  expect(String(endpoint.id.type)).toBe('ID');
  expect(Object.keys(endpoint)).toEqual(expect.arrayContaining(['address', 'connectionType', 'payloadType']));
  expect(Object.keys(endpoint)).not.toContain('customerId');
  expect(String(schema.getQueryType()!.getFields().adminEndpoints.type)).toBe('[CustomerEndpoint!]!');
  expect(schema.getType('Subscription')).toBeDefined();
});
