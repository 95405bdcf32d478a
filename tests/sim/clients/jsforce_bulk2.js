// jsforce (npm) running Bulk API 2.0 query jobs (Connection#bulk2.query) against
// tests/sim/salesforce_sim.py. Run by tests/sim/test_sim_bulk_salesforce.py:
//   NODE_PATH=build/npm-clients/node_modules node tests/sim/clients/jsforce_bulk2.js '<json>'
// <json>: {"url": sim base URL, "clientId", "clientSecret", "version": "62.0",
//          "soql": a query, "badSoql": an invalid one}
// jsforce creates the job, polls it until JobComplete, then reads every results page by the
// Sforce-Locator header and parses the CSV; on an error it deletes the job. The invalid query
// runs twice: refused at creation (the simulator's bulkInvalidQuery "reject"), then, after this
// script sets bulkInvalidQuery "fail" through /_sim/config, as a job that ends Failed.
// Prints one JSON object: each step's result or the error jsforce raised. Exits 1 only on a
// harness error.
'use strict';

const jsforce = require('jsforce');

const cfg = JSON.parse(process.argv[2]);
const out = {};

async function step(name, fn) {
  try {
    out[name] = { ok: true, value: await fn() };
  } catch (err) {
    out[name] = { ok: false, error: { name: err.name, errorCode: err.errorCode, message: err.message } };
  }
  return out[name];
}

// Every record of a bulk query, in the order the results pages gave them.
async function records(conn, soql) {
  const stream = await conn.bulk2.query(soql);
  const rows = [];
  await new Promise((resolve, reject) => {
    stream.on('record', (r) => rows.push(r));
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  return rows;
}

async function main() {
  const conn = new jsforce.Connection({
    oauth2: { loginUrl: cfg.url, clientId: cfg.clientId, clientSecret: cfg.clientSecret },
    version: cfg.version,
  });
  await step('authorize', () => conn.authorize({ grant_type: 'client_credentials' }));
  if (!out.authorize.ok) return;
  conn.bulk2.pollInterval = 50;
  conn.bulk2.pollTimeout = 20000;
  await step('query', () => records(conn, cfg.soql));
  await step('queryBad', () => records(conn, cfg.badSoql));
  const set = await fetch(`${cfg.url}/_sim/config`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ bulkInvalidQuery: 'fail' }),
  });
  if (!set.ok) throw new Error(`/_sim/config answered ${set.status}`);
  await step('queryFailing', () => records(conn, cfg.badSoql));
}

main()
  .then(() => process.stdout.write(JSON.stringify(out) + '\n'))
  .catch((err) => {
    process.stderr.write(`jsforce_bulk2.js: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  });
