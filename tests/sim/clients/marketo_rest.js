// node-marketo-rest (npm) against tests/sim/marketo_sim.py: identity, lead lookup by email,
// createOrUpdate, and the program-member calls campaign-sync makes. Run by
// tests/sim/test_sim_real_clients.py:
//   NODE_PATH=build/npm-clients/node_modules node tests/sim/clients/marketo_rest.js '<json>'
// <json>: {"url": sim base URL, "clientId", "clientSecret", "programId",
//          "emails": [3 known lead emails], "newEmail": an unknown one,
//          "statuses": [a status, a later one, one on the same step as the later one]}
// node-marketo-rest 0.7.8 has lead, list, campaign and bulk-extract methods but none for
// programs, program members or channels: those go through its Connection (get/postJson), which
// is the same code path its own methods use (token, retry on 601/602/606, success:false as an
// HttpError, nextPage for paging tokens). Prints one JSON object: each step's result or error.
'use strict';

const Marketo = require('node-marketo-rest');

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

// The envelope as a client sees it, without the per-call requestId.
function envelope(data) {
  const { requestId, ...rest } = data;
  return { hasRequestId: typeof requestId === 'string', ...rest,
           hasNextPage: typeof data.nextPage === 'function' };
}

async function main() {
  const marketo = new Marketo({
    endpoint: `${cfg.url}/rest`,
    identity: `${cfg.url}/identity`,
    clientId: cfg.clientId,
    clientSecret: cfg.clientSecret,
    retry: { maxRetries: 2, initialDelay: 20, maxDelay: 100 },
  });
  const conn = marketo._connection;
  const pid = cfg.programId;
  const [st0, st1, st1b] = cfg.statuses;

  await step('identity', async () => {
    const t = await marketo.getOAuthToken();
    return { tokenType: t.token_type, expiresIn: t.expires_in, hasToken: Boolean(t.access_token),
             scope: t.scope };
  });

  // Lead lookup by email (GET leads.json?filterType=email&filterValues=a,b,c), then paging.
  await step('findByEmail', async () => envelope(await marketo.lead.find(
    'email', cfg.emails.concat([cfg.newEmail]), { fields: ['email', 'firstName', 'lastName'] })));
  await step('findPaged', async () => {
    const first = await marketo.lead.find('email', cfg.emails, { fields: ['email'], batchSize: 2 });
    const second = await first.nextPage();
    return { first: envelope(first), second: envelope(second) };
  });

  // createOrUpdate: one known email (updated), one new (created), one without an email.
  const upsert = await step('createOrUpdate', async () => envelope(await marketo.lead.createOrUpdate(
    [{ email: cfg.emails[0], firstName: 'Renamed' }, { email: cfg.newEmail, lastName: 'New', company: 'Acme' },
     { firstName: 'NoEmail' }],
    { lookupField: 'email', action: 'createOrUpdate' })));
  const leadIds = [];
  await step('leadIds', async () => {
    const found = await marketo.lead.find('email', cfg.emails.concat([cfg.newEmail]), { fields: ['id', 'email'] });
    found.result.forEach((l) => leadIds.push(l.id));
    return found.result.map((l) => l.email);
  });
  if (!upsert.ok) return;

  // Program members: members/status.json, members.json (paged), members/delete.json.
  const statusCall = (name, ids) => conn.postJson(`/v1/programs/${pid}/members/status.json`,
    { statusName: name, input: ids.map((leadId) => ({ leadId })) });
  await step('statusCreate', async () => envelope(await statusCall(st0, leadIds)));
  await step('statusForward', async () => envelope(await statusCall(st1, [leadIds[0], leadIds[1]])));
  await step('statusSameStep', async () => envelope(await statusCall(st1b, [leadIds[0]])));
  await step('statusBackward', async () => envelope(await statusCall(st0, [leadIds[1]])));
  await step('statusUnknown', async () => envelope(await statusCall('No Such Status', [leadIds[0]])));
  await step('membersPaged', async () => {
    const q = { filterType: 'leadId', filterValues: leadIds.join(','), fields: 'statusName', batchSize: 2 };
    let raw = await conn.get(`/v1/programs/${pid}/members.json`, { query: q });
    const pages = [envelope(raw)];
    while (typeof raw.nextPage === 'function' && pages.length < 10) {
      raw = await raw.nextPage();
      pages.push(envelope(raw));
    }
    return pages;
  });
  await step('membersDelete', async () => envelope(await conn.postJson(
    `/v1/programs/${pid}/members/delete.json`, { input: [{ leadId: leadIds[2] }, { leadId: 999999 }] })));
  await step('unknownProgram', async () => envelope(await conn.postJson(
    '/v1/programs/424242/members/status.json', { statusName: st0, input: [{ leadId: leadIds[0] }] })));

  // Asset API: the program and its channel's statuses.
  await step('program', async () => envelope(await conn.get(`/asset/v1/program/${pid}.json`)));
  await step('channels', async () => envelope(await conn.get('/asset/v1/channels.json', { query: { maxReturn: 200 } })));
}

main()
  .then(() => process.stdout.write(JSON.stringify(out) + '\n'))
  .catch((err) => {
    process.stderr.write(`marketo_rest.js: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  });
