// Shared by the camunda-bpm-sdk-js scenarios (tests/test_camunda_sdk_js.py runs them):
// the SDK's client for the casevars the environment names, and a record of every SDK
// operation a scenario called, printed as one JSON line when it ends.
'use strict';

const assert = require('assert');
const CamSDK = require('camunda-bpm-sdk-js');

// CASEVARS_API_URI is the SDK's apiUri; CASEVARS_ENGINE its engine ('' for none: the
// SDK then uses apiUri as the REST root, otherwise it appends /engine/{engine}).
function client() {
  const engine = process.env.CASEVARS_ENGINE;
  return new CamSDK.Client({
    apiUri: process.env.CASEVARS_API_URI,
    engine: engine === '' ? false : engine,
  });
}

const passed = [];

// Calls resource.method(...args) with the SDK's callback and resolves with its result;
// the operation counts as passed once `check` (if any) accepted the result.
function call(sdk, resourceName, method, ...args) {
  const resource = sdk.resource(resourceName);
  return new Promise((resolve, reject) => {
    resource[method](...args, (err, result) => (err ? reject(err) : resolve(result)));
  }).then((result) => {
    passed.push(`${resourceName}.${method}`);
    return result;
  });
}

// Calls an operation that casevars must refuse, and checks the SDK's error: the status
// and Camunda's message, which the SDK puts in err.message.
async function refused(sdk, resourceName, method, status, message, ...args) {
  let error = null;
  try {
    await call(sdk, resourceName, method, ...args);
  } catch (err) {
    error = err;
  }
  assert.ok(error, `${resourceName}.${method} was not refused`);
  assert.strictEqual(error.status, status, error.message);
  assert.strictEqual(error.message, message);
  passed.push(`${resourceName}.${method}`);
}

function run(scenario) {
  scenario(client())
    .then(() => {
      process.stdout.write(JSON.stringify({ passed }) + '\n');
    })
    .catch((err) => {
      process.stdout.write(JSON.stringify({ passed, failed: String(err && err.stack || err) }) + '\n');
      process.exitCode = 1;
    });
}

// Short enough for a definition id of the `{key}:1:{uuid}` shape (64 characters).
function uniqueId(label) {
  return `${label}-${Math.random().toString(36).slice(2, 10)}`;
}

module.exports = { assert, call, refused, run, uniqueId };
