// Runs in every test file: each test ends with no response that the API document does not describe.
import { afterEach, expect } from 'vitest';
import { takeResponseViolations } from './test-app.js';

afterEach(() => {
  expect(takeResponseViolations(), 'responses the OpenAPI document does not describe').toEqual([]);
});
