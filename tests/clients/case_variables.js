// camunda-bpm-sdk-js's variable operations on cases: a case execution's local
// variables, variable instances and historic variable instances, against casevars.
'use strict';

const { assert, call, run, uniqueId } = require('./sdk');

run(async (sdk) => {
  const key = uniqueId('sdk-vars');
  const created = await call(sdk, 'case-definition', 'create', {
    key,
    variables: {
      keep: { value: 'kept', type: 'String' },
      drop: { value: 1, type: 'Integer' },
    },
  });
  const id = created.id;

  // caseExecution.modifyVariables posts its whole argument (`id` included) to
  // /localVariables; caseExecution.deleteVariable sends `{}` as its DELETE's body.
  await call(sdk, 'case-execution', 'modifyVariables', {
    id,
    modifications: { amount: { value: 42, type: 'Long' }, note: { value: 'hi' } },
    deletions: ['drop'],
  });
  await call(sdk, 'case-execution', 'deleteVariable', { id, varId: 'note' });

  // variable.instances (POST /variable-instance, sortBy and sortOrder in its body),
  // count and list (GET).
  const instances = await call(sdk, 'variable', 'instances', {
    caseInstanceIdIn: [id],
    deserializeValues: false,
    sortBy: 'variableName',
    sortOrder: 'desc',
  });
  const named = instances.map((v) => [v.name, v.value]);
  assert.deepStrictEqual(named, [['keep', 'kept'], ['amount', 42]]);
  assert.ok(instances.every((v) => v.caseExecutionId === id && v.caseInstanceId === id));
  assert.strictEqual(await call(sdk, 'variable', 'count', { caseInstanceIdIn: id }), 2);
  const listed = await call(sdk, 'variable', 'list', { caseInstanceIdIn: id, variableName: 'keep' });
  assert.strictEqual(listed.count, 1);
  assert.strictEqual(listed.items[0].value, 'kept');

  // history.variableInstance and variableInstanceCount.
  const historic = await call(sdk, 'history', 'variableInstance', { caseInstanceId: id });
  assert.deepStrictEqual(historic.map((v) => v.name).sort(), ['amount', 'keep']);
  const counted = await call(sdk, 'history', 'variableInstanceCount', { caseInstanceId: id });
  assert.strictEqual(counted.count, 2);
});
