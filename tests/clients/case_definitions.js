// camunda-bpm-sdk-js's calls about a case definition's model and history: its CMMN
// document, its history time to live, and its case activities (plan items, which
// casevars does not have: Camunda's empty answers), against casevars.
'use strict';

const { assert, call, refused, run, uniqueId } = require('./sdk');

run(async (sdk) => {
  const key = uniqueId('sdk-def');
  const created = await call(sdk, 'case-definition', 'create', {
    key,
    variables: { amount: { value: 3, type: 'Integer' } },
  });
  const definitionId = created.caseDefinitionId;

  // caseDefinition.xml by id and by key: Camunda's {id, cmmnXml}, one case whose id is
  // the key and an empty case plan model.
  const byId = await call(sdk, 'case-definition', 'xml', { id: definitionId });
  assert.strictEqual(byId.id, definitionId);
  assert.ok(byId.cmmnXml.includes(`<case id="${key}"`), byId.cmmnXml);
  assert.ok(byId.cmmnXml.includes('<casePlanModel id="casePlanModel"'), byId.cmmnXml);
  const byKey = await call(sdk, 'case-definition', 'xml', { key });
  assert.deepStrictEqual(byKey, byId);

  // caseDefinition.updateHistoryTimeToLive: the definition shows it, the document too;
  // null goes back to the service's default; a negative number is Camunda's refusal.
  await call(sdk, 'case-definition', 'updateHistoryTimeToLive', definitionId, {
    historyTimeToLive: 30,
  });
  const definition = await new Promise((resolve, reject) => {
    sdk.resource('case-definition').get(definitionId, (err, result) => (err ? reject(err) : resolve(result)));
  });
  assert.strictEqual(definition.historyTimeToLive, 30);
  const withTtl = await call(sdk, 'case-definition', 'xml', { id: definitionId });
  assert.ok(withTtl.cmmnXml.includes('camunda:historyTimeToLive="30"'), withTtl.cmmnXml);
  await call(sdk, 'case-definition', 'updateHistoryTimeToLive', definitionId, {
    historyTimeToLive: null,
  });
  await refused(
    sdk, 'case-definition', 'updateHistoryTimeToLive', 400,
    'historyTimeToLive is not greater than or equal to 0',
    definitionId, { historyTimeToLive: -1 },
  );

  // history.caseActivityInstance and its count, with the filters the SDK documents;
  // history.caseActivityStatistics by id and by {id}.
  const activities = await call(sdk, 'history', 'caseActivityInstance', {
    caseInstanceId: created.id,
    caseDefinitionId: definitionId,
    finished: true,
    sortBy: 'createTime',
    sortOrder: 'asc',
    firstResult: 0,
    maxResults: 10,
  });
  assert.deepStrictEqual(activities, []);
  const counted = await call(sdk, 'history', 'caseActivityInstanceCount', { caseInstanceId: created.id });
  assert.deepStrictEqual(counted, { count: 0 });
  await refused(
    sdk, 'history', 'caseActivityInstance', 400,
    'Only a single sorting parameter specified. sortBy and sortOrder required',
    { sortBy: 'createTime' },
  );
  assert.deepStrictEqual(await call(sdk, 'history', 'caseActivityStatistics', definitionId), []);
  assert.deepStrictEqual(await call(sdk, 'history', 'caseActivityStatistics', { id: definitionId }), []);
});
