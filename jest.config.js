/**
 * Tests run the TypeScript sources directly; isolatedModules keeps ts-jest fast (`npm run typecheck` checks types).
 * The README quick start (test/quickstart) copies the checkout and builds it: `npm run test:quickstart`, run by CI.
 */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/quickstart/'],
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  testTimeout: 120000,
  maxWorkers: 2,
};
