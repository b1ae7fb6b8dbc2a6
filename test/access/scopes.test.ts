import { grantScopes, parseScopes, type Permission, permits, permittedTypes, scopeCovers } from '../../src/access/scopes';

const LETTERS: Permission[] = ['c', 'r', 'u', 'd', 's'];

describe('scopes', () => {
  test('a wildcard scope covers narrower SMART scopes, v1 and v2 syntax', () => {
    expect(scopeCovers('system/*.cruds', 'system/Patient.rs')).toBe(true);
    expect(scopeCovers('system/*.cruds', 'system/Observation.read')).toBe(true);
    expect(scopeCovers('system/*.*', 'system/Patient.cud')).toBe(true);
    expect(scopeCovers('system/Patient.rs', 'system/Patient.r')).toBe(true);
  });

  test('a scope does not cover more permissions, another type or another context', () => {
    expect(scopeCovers('system/*.rs', 'system/Patient.c')).toBe(false);
    expect(scopeCovers('system/*.read', 'system/Patient.write')).toBe(false);
    expect(scopeCovers('system/Patient.cruds', 'system/Observation.r')).toBe(false);
    expect(scopeCovers('system/*.cruds', 'patient/*.rs')).toBe(false);
    expect(scopeCovers('launch', 'launch/patient')).toBe(false);
  });

  test('no requested scope grants everything the client holds', () => {
    expect(grantScopes(parseScopes(undefined), ['system/*.rs', 'x'])).toEqual({ granted: ['system/*.rs', 'x'], denied: [] });
    expect(grantScopes(parseScopes('  '), ['system/*.rs'])).toEqual({ granted: ['system/*.rs'], denied: [] });
  });

  test('requested scopes are granted as asked, or the uncovered ones are reported', () => {
    expect(grantScopes(parseScopes('system/Patient.rs system/Patient.rs'), ['system/*.cruds'])).toEqual({ granted: ['system/Patient.rs'], denied: [] });
    expect(grantScopes(parseScopes('system/Patient.rs admin'), ['system/*.rs'])).toEqual({ granted: [], denied: ['admin'] });
  });

  test('permits reads v1 and v2 letters per type: read = r+s, write = c+u+d, * = all', () => {
    expect(LETTERS.filter((p) => permits(['system/Patient.read'], p, 'Patient'))).toEqual(['r', 's']);
    expect(LETTERS.filter((p) => permits(['system/*.write'], p, 'Observation'))).toEqual(['c', 'u', 'd']);
    expect(LETTERS.filter((p) => permits(['system/Observation.*'], p, 'Observation'))).toEqual(['c', 'r', 'u', 'd', 's']);
    expect(LETTERS.filter((p) => permits(['system/Patient.rs', 'system/*.c'], p, 'Patient'))).toEqual(['c', 'r', 's']);
    expect(permits(['system/Patient.cruds'], 'r', 'Observation')).toBe(false);
    expect(permits(['openid', 'system/Patient.'], 'r', 'Patient')).toBe(false);
  });

  test('patient/ and user/ scopes grant nothing to a client that speaks for no patient', () => {
    expect(permits(['patient/*.cruds', 'user/Patient.rs'], 'r', 'Patient')).toBe(false);
    expect(permittedTypes(['patient/*.rs'], ['r', 's'])).toEqual([]);
  });

  test('a patient-scoped token is granted reads and searches by its patient/ scopes only, never writes', () => {
    const patient = { patient: true };
    expect(LETTERS.filter((p) => permits(['patient/*.cruds'], p, 'Observation', patient))).toEqual(['r', 's']);
    expect(LETTERS.filter((p) => permits(['patient/Patient.read'], p, 'Patient', patient))).toEqual(['r', 's']);
    expect(permits(['patient/Patient.rs'], 'r', 'Observation', patient)).toBe(false);
    // A system/ scope on a patient's token would reach every patient's data: it counts for nothing.
    expect(permits(['system/*.cruds'], 'r', 'Patient', patient)).toBe(false);
    expect(permittedTypes(['patient/*.rs', 'system/*.cruds'], ['r', 's'], patient)).toBe('*');
    expect(permittedTypes(['patient/Patient.rs', 'system/*.cruds'], ['r', 's'], patient)).toEqual(['Patient']);
    expect(permittedTypes(['patient/*.cud'], ['r', 's'], patient)).toEqual([]);
  });

  test('permittedTypes lists the types a caller may read or search, or * for a wildcard', () => {
    expect(permittedTypes(['system/Patient.rs', 'system/Observation.c', 'system/Encounter.s'], ['r', 's'])).toEqual(['Encounter', 'Patient']);
    expect(permittedTypes(['system/Patient.rs', 'system/*.read'], ['r', 's'])).toBe('*');
    expect(permittedTypes(['system/*.write'], ['r', 's'])).toEqual([]);
  });
});
