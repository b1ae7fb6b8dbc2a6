import { cloneFhir, isFhirDecimal } from './losslessJson';
import { badRequest, unprocessable } from './outcome';

/**
 * JSON Patch (RFC 6902), as FHIR's `patch` interaction accepts it (R4 http.html#patch).
 * Applies to a deep copy: a failing operation leaves the input untouched.
 */
export interface PatchOperation {
  op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  path: string;
  value?: unknown;
  from?: string;
}

const OPS = new Set(['add', 'remove', 'replace', 'move', 'copy', 'test']);

export function parsePatch(body: unknown): PatchOperation[] {
  if (!Array.isArray(body)) throw badRequest('A JSON Patch body must be an array of operations');
  body.forEach((op, i) => {
    const where = `patch[${i}]`;
    if (typeof op !== 'object' || op === null) throw badRequest(`${where} is not an object`, where);
    const o = op as Record<string, unknown>;
    if (typeof o.op !== 'string' || !OPS.has(o.op)) throw badRequest(`${where}.op must be one of ${[...OPS].join(', ')}`, `${where}.op`);
    if (typeof o.path !== 'string') throw badRequest(`${where}.path must be a JSON Pointer string`, `${where}.path`);
    if ((o.op === 'move' || o.op === 'copy') && typeof o.from !== 'string') throw badRequest(`${where}.from is required for ${o.op}`, `${where}.from`);
    if ((o.op === 'add' || o.op === 'replace' || o.op === 'test') && !('value' in o)) throw badRequest(`${where}.value is required for ${o.op}`, `${where}.value`);
  });
  return body as PatchOperation[];
}

function pointer(path: string, where: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw badRequest(`${where}: '${path}' is not a JSON Pointer`, where);
  return path
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

type Container = Record<string, unknown> | unknown[];

function parentOf(doc: unknown, tokens: string[], where: string): [Container, string] {
  let node = doc;
  for (const token of tokens.slice(0, -1)) {
    node = child(node, token, where);
  }
  if (typeof node !== 'object' || node === null) throw unprocessable(`${where}: path does not exist`, where);
  return [node as Container, tokens[tokens.length - 1]];
}

function child(node: unknown, token: string, where: string): unknown {
  if (Array.isArray(node)) {
    const i = index(token, node.length - 1, where);
    return node[i];
  }
  if (typeof node === 'object' && node !== null && Object.prototype.hasOwnProperty.call(node, token)) {
    return (node as Record<string, unknown>)[token];
  }
  throw unprocessable(`${where}: path does not exist`, where);
}

function index(token: string, max: number, where: string): number {
  if (!/^(0|[1-9][0-9]*)$/.test(token) || Number(token) > max) {
    throw unprocessable(`${where}: array index '${token}' is out of range`, where);
  }
  return Number(token);
}

function get(doc: unknown, tokens: string[], where: string): unknown {
  return tokens.reduce((node, t) => child(node, t, where), doc);
}

function remove(doc: unknown, tokens: string[], where: string): unknown {
  if (tokens.length === 0) throw unprocessable(`${where}: cannot remove the whole resource`, where);
  const [parent, key] = parentOf(doc, tokens, where);
  if (Array.isArray(parent)) return parent.splice(index(key, parent.length - 1, where), 1)[0];
  const value = child(parent, key, where);
  delete parent[key];
  return value;
}

function add(doc: unknown, tokens: string[], value: unknown, where: string): unknown {
  if (tokens.length === 0) return value;
  const [parent, key] = parentOf(doc, tokens, where);
  if (Array.isArray(parent)) {
    const i = key === '-' ? parent.length : index(key, parent.length, where);
    parent.splice(i, 0, value);
  } else {
    parent[key] = value;
  }
  return doc;
}

function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  // Numbers are equal when their values are (RFC 6902 §4.6), whatever digits they were written with.
  if (isFhirDecimal(a) || isFhirDecimal(b)) return (typeof a === 'number' || isFhirDecimal(a)) && (typeof b === 'number' || isFhirDecimal(b)) && Number(a) === Number(b);
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => equal((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

export function applyPatch<T>(document: T, operations: PatchOperation[]): T {
  let doc: unknown = cloneFhir(document);
  operations.forEach((op, i) => {
    const where = `patch[${i}]`;
    const path = pointer(op.path, `${where}.path`);
    switch (op.op) {
      case 'add':
        doc = add(doc, path, cloneFhir(op.value), where);
        break;
      case 'remove':
        remove(doc, path, where);
        break;
      case 'replace':
        get(doc, path, where);
        if (path.length === 0) doc = cloneFhir(op.value);
        else {
          const [parent, key] = parentOf(doc, path, where);
          (parent as Record<string, unknown>)[key] = cloneFhir(op.value);
        }
        break;
      case 'move': {
        const from = pointer(op.from as string, `${where}.from`);
        if (op.path.startsWith(`${op.from}/`)) throw unprocessable(`${where}: cannot move a value into itself`, where);
        doc = add(doc, path, remove(doc, from, where), where);
        break;
      }
      case 'copy':
        doc = add(doc, path, cloneFhir(get(doc, pointer(op.from as string, `${where}.from`), where)), where);
        break;
      case 'test':
        if (!equal(get(doc, path, where), op.value)) {
          throw unprocessable(`${where}: test failed, the value at '${op.path}' differs`, where);
        }
        break;
    }
  });
  return doc as T;
}
