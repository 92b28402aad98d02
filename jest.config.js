/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': 'ts-jest',
    // cookie@2 (used by Fastify's inject) ships ESM only; Jest's CommonJS runtime needs it transpiled.
    // content-disposition@2 (used by @fastify/static) too.
    '/node_modules/(?:cookie|content-disposition)/.+\\.js$': ['ts-jest', { tsconfig: { allowJs: true, module: 'commonjs', isolatedModules: true } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!cookie/|content-disposition/)'],
  testTimeout: 30000,
  globalSetup: '<rootDir>/test/helpers/global-setup.js',
};
