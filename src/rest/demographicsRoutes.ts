import { badRequest, notFound } from '../fhir/outcome';
import type { Resource } from '../fhir/types';
import { r4ToStu3 } from '../facade/r4ToStu3';
import { readDemographicsMessage } from '../messaging/demographicsMessage';
import type { NativeRecord } from '../native/nativeRecord';
import type { ResourceValidator } from '../service/ports';
import { ok } from './fhirHttp';
import { RouteTable, type RouteHandler } from './routeTable';

/**
 * The demographics endpoint (issue 14 item 3; DESIGN §1, §2): `POST /fhir/demographics/Patient/$process-message`
 * and nothing else (other operations and paths 404, other methods 405). The body must be one valid STU3
 * Patient (an R4-only shape is a 400 naming the element); the native record matches it by NHS number and
 * answers with the resulting Patient, in STU3: 201 when it was created, 200 when it was updated (or unchanged).
 */
export interface DemographicsContext {
  record: NativeRecord;
  validator: ResourceValidator;
  /** Where the Patient reads back (the facade): the Location of a created one. */
  facadeUrl: string;
}

const processMessage: RouteHandler<DemographicsContext> = async (req, p, ctx) => {
  if (p.op !== 'process-message') throw notFound(`The demographics endpoint has no operation $${p.op}: use Patient/$process-message`);
  const body = req.body as Resource | undefined;
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw badRequest('The body must be one STU3 Patient resource');
  if (body.resourceType !== 'Patient') throw badRequest(`The body must be a Patient, not ${JSON.stringify(body.resourceType ?? null)}`, 'resourceType');
  const validator: ResourceValidator = ctx.validator;
  validator.assertValid('STU3', body, 'Patient');
  const saved = await ctx.record.receiveDemographics(readDemographicsMessage(body));
  const patient = r4ToStu3(saved.resource);
  return ok(patient, saved.created ? 201 : 200, saved.created ? { Location: `${ctx.facadeUrl}/Patient/${saved.patient.id}` } : {});
};

export function demographicsRoutes(): RouteTable<DemographicsContext> {
  return new RouteTable<DemographicsContext>().add('POST', 'Patient/$op', processMessage);
}
