// jsforce (npm) against tests/sim/salesforce_sim.py: the calls campaign-sync makes, made by a
// real Salesforce client. Run by tests/sim/test_sim_real_clients.py:
//   NODE_PATH=build/npm-clients/node_modules node tests/sim/clients/jsforce_sf.js '<json>'
// <json>: {"url": sim base URL, "clientId", "clientSecret", "version": "62.0",
//          "campaignId", "leadIds": [5 Lead ids, none a member yet], "statuses": [2 labels],
//          "deletedStart", "deletedEnd": the getDeleted window (ISO-8601)}
// Prints one JSON object: what each step returned (or the error jsforce raised), so the test
// can compare it with the simulator's state and call log. Exits 1 only on a harness error.
'use strict';

const jsforce = require('jsforce');

const cfg = JSON.parse(process.argv[2]);
const out = {};

// One step: its result, or the error as jsforce raised it (name, errorCode, message).
async function step(name, fn) {
  try {
    out[name] = { ok: true, value: await fn() };
  } catch (err) {
    out[name] = {
      ok: false,
      error: { name: err.name, errorCode: err.errorCode, message: err.message, data: err.data },
    };
  }
  return out[name];
}

async function main() {
  const conn = new jsforce.Connection({
    oauth2: { loginUrl: cfg.url, clientId: cfg.clientId, clientSecret: cfg.clientSecret },
    version: cfg.version,
    // Client credentials issue no refresh token: on a 401 jsforce calls this to log in again.
    refreshFn: (c, callback) => {
      c.oauth2.requestToken({ grant_type: 'client_credentials' })
        .then((res) => callback(null, res.access_token, res), (err) => callback(err));
    },
  });
  const member = (leadId, status) => ({ CampaignId: cfg.campaignId, LeadId: leadId, Status: status });
  const [s1, s2] = cfg.statuses;
  const [l0, l1, l2, l3, l4] = cfg.leadIds;
  const cm = conn.sobject('CampaignMember');

  // OAuth 2.0 client credentials: Connection#authorize with an explicit grant_type.
  await step('authorize', async () => {
    const user = await conn.authorize({ grant_type: 'client_credentials' });
    return { user, instanceUrl: conn.instanceUrl, hasToken: Boolean(conn.accessToken) };
  });
  if (!out.authorize.ok) return;

  const soql = 'SELECT Id, Email FROM Lead ORDER BY Email';
  // autoFetch follows nextRecordsUrl over the simulator's batch size.
  await step('queryAutoFetch', async () => {
    const records = [];
    await new Promise((resolve, reject) => {
      conn.query(soql).on('record', (r) => records.push(r.Email))
        .on('end', resolve).on('error', reject)
        .run({ autoFetch: true, maxFetch: 1000 });
    });
    return records;
  });
  // The first page, then Connection#queryMore on its nextRecordsUrl.
  await step('queryMore', async () => {
    const first = await conn.query(soql);
    const second = await conn.queryMore(first.nextRecordsUrl);
    return {
      first: { totalSize: first.totalSize, done: first.done, n: first.records.length,
               hasNext: Boolean(first.nextRecordsUrl) },
      second: { totalSize: second.totalSize, done: second.done,
                emails: second.records.map((r) => r.Email) },
    };
  });

  // One record at a time: sobjects/CampaignMember (POST, PATCH, DELETE).
  const created = await step('createOne', () => cm.create(member(l0, s1)));
  const id0 = created.ok ? created.value.id : null;
  await step('createDuplicate', () => cm.create(member(l0, s2)));
  await step('updateOne', () => cm.update({ Id: id0, Status: s2 }));
  await step('retrieveOne', async () => {
    const r = await cm.retrieve(id0);
    return { Id: r.Id, Status: r.Status, LeadId: r.LeadId, CampaignId: r.CampaignId };
  });
  await step('destroyOne', () => cm.destroy(id0));
  await step('retrieveDeleted', () => cm.retrieve(id0));

  // sObject Collections: composite/sobjects (POST, PATCH, DELETE ?ids=).
  const many = await step('createMany', () => cm.create([member(l1, s1), member(l2, s1), member(l3, s1)]));
  const ids = many.ok ? many.value.map((r) => r.id) : [];
  await step('createManyPartial', () => cm.create([member(l4, s1), member(l1, s1)]));
  await step('updateMany', () => cm.update(ids.map((Id) => ({ Id, Status: s2 }))));
  // Several records by id: jsforce POSTs {ids, fields} to composite/sobjects/CampaignMember.
  await step('retrieveMany', async () => {
    const recs = await cm.retrieve([ids[0], ids[1], id0], { fields: ['Id', 'Status'] });
    return recs.map((r) => (r ? { Id: r.Id, Status: r.Status } : null));
  });
  // Without fields jsforce asks describe for every field first.
  await step('retrieveManyAllFields', async () => {
    const recs = await cm.retrieve([ids[2]]);
    return recs.map((r) => (r ? { Id: r.Id, Status: r.Status, LeadId: r.LeadId, Email: r.Email } : null));
  });
  await step('destroyMany', () => cm.destroy(ids.slice(0, 2)));
  await step('queryAfter', async () => {
    const r = await conn.query(`SELECT Id, LeadId, Status FROM CampaignMember WHERE CampaignId = '${cfg.campaignId}' ORDER BY Id`);
    return r.records.map((x) => ({ Id: x.Id, LeadId: x.LeadId, Status: x.Status }));
  });

  // SOQL as jsforce's query builder writes it: IN list, datetime literal, relationship LIKE.
  await step('find', async () => {
    const since = jsforce.SfDate.toDateTimeLiteral(new Date(Date.now() - 3600000));
    const recs = await cm.find({
      CampaignId: cfg.campaignId,
      LeadId: { $in: [l3, l4] },
      LastModifiedDate: { $gte: since },
      'Lead.Email': { $like: '%@example.com' },
      Status: { $ne: null },
    }, ['Id', 'LeadId', 'Status']).sort({ LeadId: -1 }).limit(10);
    return recs.map((x) => ({ LeadId: x.LeadId, Status: x.Status }));
  });

  // queryAll (scanAll) over the batch size: jsforce follows the locator as /query/<locator>.
  await step('queryAllDeleted', async () => {
    const records = [];
    await new Promise((resolve, reject) => {
      conn.query('SELECT Id, IsDeleted FROM CampaignMember WHERE IsDeleted = true ORDER BY Id')
        .on('record', (r) => records.push({ Id: r.Id, IsDeleted: r.IsDeleted }))
        .on('end', resolve).on('error', reject)
        .run({ autoFetch: true, maxFetch: 1000, scanAll: true });
    });
    return records;
  });

  // getDeleted: SObject#deleted(start, end); jsforce formats and encodes the times itself.
  await step('deleted', () => cm.deleted(new Date(cfg.deletedStart), new Date(cfg.deletedEnd)));
  // limits (after the test expired the token: a 401, a new token, the call again).
  await step('limits', async () => ({ limits: await conn.limits(), limitInfo: conn.limitInfo }));
}

main()
  .then(() => process.stdout.write(JSON.stringify(out) + '\n'))
  .catch((err) => {
    process.stderr.write(`jsforce_sf.js: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  });
