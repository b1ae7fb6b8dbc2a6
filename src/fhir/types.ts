/** FHIR JSON as it travels through the server: shapes are checked by validation, not by the type system. */
export interface Resource {
  resourceType: string;
  id?: string;
  meta?: Meta;
  [element: string]: unknown;
}

export interface Meta {
  versionId?: string;
  lastUpdated?: string;
  profile?: string[];
  security?: Coding[];
  tag?: Coding[];
  [element: string]: unknown;
}

export interface Coding {
  system?: string;
  code?: string;
  display?: string;
  [element: string]: unknown;
}

export type FhirVersion = 'R4' | 'STU3';

export interface Bundle extends Resource {
  resourceType: 'Bundle';
  type: string;
  total?: number;
  link?: { relation: string; url: string }[];
  entry?: BundleEntry[];
}

export interface BundleEntry {
  fullUrl?: string;
  resource?: Resource;
  search?: { mode?: 'match' | 'include' | 'outcome'; score?: number };
  request?: { method: string; url: string; ifNoneExist?: string; ifMatch?: string; ifNoneMatch?: string; ifModifiedSince?: string };
  response?: { status: string; location?: string; etag?: string; lastModified?: string; outcome?: Resource };
}
