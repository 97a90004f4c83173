/**
 * Two projects: `unit` (every *.test.ts beside the code; no broker, no services) and
 * `integration` (test/: real Kafka-protocol broker, embedded ClickHouse, the CLI as a user runs
 * it; its global setup starts or finds the broker). `npm test` runs both, `npm run test:unit`
 * the first.
 */
const shared = {
  // Node with the host realm's typed arrays: native addons (onnxruntime-node, tfjs-node) hand out
  // typed arrays that code checks with instanceof, as it runs outside jest.
  testEnvironment: '<rootDir>/features/testing/nativeTypedArraysEnvironment.ts',
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } }],
  },
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
};

/** @type {import('jest').Config} */
module.exports = {
  maxWorkers: 2,
  // A global option (projects do not take it).
  testTimeout: 60_000,
  projects: [
    {
      ...shared,
      displayName: 'unit',
      testMatch: ['<rootDir>/**/*.test.ts'],
      testPathIgnorePatterns: [...shared.testPathIgnorePatterns, '<rootDir>/test/'],
      globalSetup: '<rootDir>/test/unitSetup.ts',
    },
    {
      ...shared,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/**/*.test.ts'],
      globalSetup: '<rootDir>/test/globalSetup.ts',
      globalTeardown: '<rootDir>/test/globalTeardown.ts',
    },
  ],
};
