import { grantScopes, parseScopes, scopeCovers } from '../../src/access/scopes';

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
});
