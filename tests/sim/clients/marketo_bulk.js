// node-marketo-rest (npm) running a Bulk Program Member Extract against tests/sim/marketo_sim.py.
// Run by tests/sim/test_sim_bulk_marketo.py:
//   NODE_PATH=build/npm-clients/node_modules node tests/sim/clients/marketo_bulk.js '<json>'
// <json>: {"url": sim base URL, "clientId", "clientSecret", "programId", "fields": [...]}
// node-marketo-rest 0.7.8 has bulkLeadExtract and bulkActivityExtract but no program member
// extract, so this script calls the program member endpoints through the library's Connection
// exactly as its own bulk methods call theirs (lib/api/bulkLeadExtract.js): the path built by
// util.createBulkPath ("/../bulk/v1/..." under the REST endpoint), create with postJson,
// enqueue with post and a "_method=POST" form, status and file with get and "_method=GET".
// Prints one JSON object: each step's result or error.
'use strict';

const Marketo = require('node-marketo-rest');
const util = require('node-marketo-rest/lib/util');

const cfg = JSON.parse(process.argv[2]);
const out = {};

async function step(name, fn) {
  try {
    out[name] = { ok: true, value: await fn() };
  } catch (err) {
    out[name] = {
      ok: false,
      error: { name: err && err.name, code: err && err.code, message: String(err && err.message || err),
               errors: err && err.errors },
    };
  }
  return out[name];
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  const marketo = new Marketo({
    endpoint: `${cfg.url}/rest`,
    identity: `${cfg.url}/identity`,
    clientId: cfg.clientId,
    clientSecret: cfg.clientSecret,
    retry: { maxRetries: 2, initialDelay: 20, maxDelay: 100 },
  });
  const conn = marketo._connection;
  const path = (...parts) => util.createBulkPath('program', 'members', 'export', ...parts);

  const created = await step('create', () => conn.postJson(path('create.json'),
    { fields: cfg.fields, filter: { programId: cfg.programId }, format: 'CSV' }, { _method: 'POST' }));
  if (!created.ok) return;
  const id = created.value.result[0].exportId;
  await step('enqueue', () => conn.post(path(id, 'enqueue.json'), { data: { _method: 'POST' } }));
  await step('poll', async () => {
    for (let i = 0; i < 200; i += 1) {
      const status = (await conn.get(path(id, 'status.json'), { data: { _method: 'GET' } })).result[0];
      if (!['Created', 'Queued', 'Processing'].includes(status.status)) return status;
      await sleep(50);
    }
    throw new Error('export did not finish');
  });
  await step('file', () => conn.get(path(id, 'file.json'), { data: { _method: 'GET' } }));
  await step('list', async () => (await conn.get(util.createBulkPath('program', 'members', 'export.json'),
    { data: { _method: 'GET' } })).result);
}

main().then(() => console.log(JSON.stringify(out)), (err) => {
  console.error(err);
  process.exit(1);
});
