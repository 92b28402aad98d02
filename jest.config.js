/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': 'ts-jest',
    // cookie (used by Fastify's inject) ships ESM only from v2 (v1 is pinned through light-my-request
    // 6.6 for Node 20); should it come back, Jest's CommonJS runtime needs it transpiled.
    '/node_modules/cookie/.+\\.js$': ['ts-jest', { tsconfig: { allowJs: true, module: 'commonjs', isolatedModules: true } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!cookie/)'],
  testTimeout: 30000,
  globalSetup: '<rootDir>/test/helpers/global-setup.js',
};
