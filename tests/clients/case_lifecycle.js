// camunda-bpm-sdk-js's case operations on case instances, case executions, case
// definitions and historic case instances, against casevars.
'use strict';

const { assert, call, refused, run, uniqueId } = require('./sdk');

run(async (sdk) => {
  const key = uniqueId('sdk-case');

  // caseDefinition.create: by key, by key and tenant, and by the id an instance reports.
  const first = await call(sdk, 'case-definition', 'create', {
    key,
    businessKey: 'first',
    variables: { amount: { value: 150, type: 'Integer' } },
  });
  assert.strictEqual(first.businessKey, 'first');
  assert.ok(first.caseDefinitionId.startsWith(`${key}:1:`), first.caseDefinitionId);
  const tenant = await call(sdk, 'case-definition', 'create', {
    key,
    tenantId: 'acme',
    businessKey: 'tenant',
  });
  assert.strictEqual(tenant.tenantId, 'acme');
  assert.notStrictEqual(tenant.caseDefinitionId, first.caseDefinitionId);
  const byId = await call(sdk, 'case-definition', 'create', {
    id: first.caseDefinitionId,
    businessKey: 'by-id',
  });
  assert.strictEqual(byId.caseDefinitionId, first.caseDefinitionId);

  // caseDefinition.get, getByKey, list and count: the definitions the creations recorded.
  const definition = await call(sdk, 'case-definition', 'get', first.caseDefinitionId);
  assert.deepStrictEqual([definition.key, definition.version, definition.tenantId], [key, 1, null]);
  const byKey = await call(sdk, 'case-definition', 'getByKey', key);
  assert.strictEqual(byKey.id, first.caseDefinitionId);
  const definitions = await call(sdk, 'case-definition', 'list', { key, sortBy: 'id', sortOrder: 'asc' });
  assert.deepStrictEqual(
    definitions.map((d) => d.id),
    [first.caseDefinitionId, tenant.caseDefinitionId].sort(),
  );
  assert.strictEqual(await call(sdk, 'case-definition', 'count', { key, tenantIdIn: 'acme' }), 1);

  // caseInstance.list and count (the SDK's count is the inherited GET .../count).
  const listed = await call(sdk, 'case-instance', 'list', { caseDefinitionKey: key });
  assert.deepStrictEqual(
    listed.map((c) => c.businessKey).sort(),
    ['by-id', 'first', 'tenant'],
  );
  assert.strictEqual(await call(sdk, 'case-instance', 'count', { caseDefinitionKey: key }), 3);

  // caseExecution.list and count: each instance's root execution.
  const executions = await call(sdk, 'case-execution', 'list', { caseInstanceId: first.id });
  assert.strictEqual(executions.length, 1);
  assert.strictEqual(executions[0].id, first.id);
  assert.strictEqual(executions[0].caseInstanceId, first.id);
  assert.strictEqual(executions[0].active, true);
  assert.strictEqual(
    await call(sdk, 'case-execution', 'count', { caseDefinitionKey: key, tenantIdIn: 'acme' }),
    1,
  );

  // A root execution takes no plan item transitions: Camunda's refusal.
  const impossible = (route, transition) =>
    `Cannot ${route} case execution ${first.id}: ENGINE-05012 Could not perform transition ` +
    `'${transition} on case execution with id '${first.id}'.Reason: The transition is not ` +
    'possible for this case instance.';
  await refused(sdk, 'case-execution', 'manualStart', 403, impossible('manualStart', 'manualStart'), first.id, {});
  await refused(sdk, 'case-execution', 'disable', 403, impossible('disable', 'disable'), first.id, {});
  await refused(sdk, 'case-execution', 'reenable', 403, impossible('reenable', 're-enable'), first.id, {});

  // caseExecution.complete completes the instance, with a variable set on the way;
  // caseInstance.close closes it, caseInstance.terminate ends another.
  await call(sdk, 'case-execution', 'complete', first.id, {
    variables: { verdict: { value: 'approved' } },
  });
  const completed = await call(sdk, 'case-execution', 'list', { caseInstanceId: first.id });
  assert.strictEqual(completed[0].active, false);
  await call(sdk, 'case-instance', 'close', first.id, {});
  assert.strictEqual(await call(sdk, 'case-execution', 'count', { caseInstanceId: first.id }), 0);
  await call(sdk, 'case-instance', 'terminate', tenant.id, {});
  const terminated = await call(sdk, 'case-instance', 'list', { caseInstanceId: tenant.id });
  assert.strictEqual(terminated[0].terminated, true);

  // history.caseInstance and caseInstanceCount see the closed one too.
  const history = await call(sdk, 'history', 'caseInstance', { caseDefinitionKey: key });
  assert.strictEqual(history.length, 3);
  const closed = history.find((c) => c.id === first.id);
  assert.strictEqual(closed.closed, true);
  assert.strictEqual(
    await call(sdk, 'history', 'caseInstanceCount', { caseDefinitionKey: key, closed: true })
      .then((r) => r.count),
    1,
  );
});
