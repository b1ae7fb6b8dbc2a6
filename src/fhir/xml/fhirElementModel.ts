import type { FhirVersion } from '../types';
import type { ElementModel } from './elementModel';
import { r4ElementModel } from './r4ElementModel';
import { stu3ElementModel } from './stu3ElementModel';

/** The element model of a FHIR version (R4 from StructureDefinitions, STU3 from its JSON schema), built once per process. */
const models = new Map<FhirVersion, ElementModel>();

export function fhirElementModel(version: FhirVersion): ElementModel {
  let model = models.get(version);
  if (!model) {
    model = version === 'R4' ? r4ElementModel() : stu3ElementModel();
    models.set(version, model);
  }
  return model;
}
