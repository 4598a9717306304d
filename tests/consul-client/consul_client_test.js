'use strict';
// musterd's Consul HTTP API (/v1/) as a real Consul client library sees it:
// Node's `consul` package (2.x, pinned in package-lock.json) against the
// musterd at MUSTER_ADDRESS (host:port; run.sh starts one). Each test case
// uses services of its own, so the cases do not see each other's changes.
//
//   MUSTER_ADDRESS=127.0.0.1:PORT node --test consul_client_test.js
//
// The X-Consul-Index of an answer: consul 2.x resolves a call to
// [response, body] instead of body when the call's `ctx` is an EventEmitter
// with `includeResponse` set; that is how its own Watch reads the index
// (lib/watch.js, lib/utils.js responseResult). withResponse() below does the
// same; the blocking-query cases also run consul.watch itself.

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { EventEmitter } = require('node:events');
const http = require('node:http');

const Consul = require('consul');

const address = process.env.MUSTER_ADDRESS;
if (!address || !/^[^:]+:\d+$/.test(address)) {
  console.error('consul_client_test.js: set MUSTER_ADDRESS to musterd\'s host:port ' +
    `(got ${JSON.stringify(address)})`);
  process.exit(2);
}
const [host, portText] = address.split(':');
const consul = new Consul({ host, port: Number(portText) });
after(() => consul.destroy());

// Every case gets names no other case (or earlier run) uses.
const run = Date.now().toString(36);
const unique = (what) => `cc-${what}-${run}`;

const CASE_TIMEOUT_MS = 30000;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The package's errors carry the whole http.IncomingMessage; turn them into
// one line with the status and the start of the body, which is what a reader
// of a failure wants (e.g. "consul: health.service: not found [HTTP 404: ...]").
function bodyText(body) {
  if (body === undefined || body === null) return '';
  const text = Buffer.isBuffer(body) ? body.toString() :
    typeof body === 'string' ? body : JSON.stringify(body);
  return text.length > 300 ? `${text.slice(0, 300)}...` : text;
}
function describeError(err) {
  if (!err) return String(err);
  const res = err.response;
  if (!res || !res.statusCode) return err.message || String(err);
  const req = res.req ? `${res.req.method} ${res.req.path}: ` : '';
  const text = bodyText(res.body);
  return `${req}${err.message} [HTTP ${res.statusCode}${text ? `: ${text}` : ''}]`;
}
async function ok(promise) {
  try {
    return await promise;
  } catch (err) {
    throw new Error(describeError(err));
  }
}

// Calls a consul method with a ctx that asks for the response too; answers
// {body, index, res} with index the X-Consul-Index header (a string).
async function withResponse(method, opts) {
  const ctx = new EventEmitter();
  ctx.includeResponse = true;
  const [res, body] = await ok(method({ ...opts, ctx }));
  const index = res.headers['x-consul-index'];
  assert.match(String(index), /^[1-9][0-9]*$/,
    `X-Consul-Index should be a positive integer, got ${JSON.stringify(index)}`);
  return { body, index, res };
}
const healthService = (opts) => consul.health.service(opts);

// Retries `check` (which asserts) until it passes or timeoutMs runs out;
// then fails with the last assertion's message.
async function eventually(what, check, { timeoutMs = 10000, intervalMs = 100 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() >= deadline) {
        throw new Error(`${what}: not so after ${timeoutMs} ms: ${err.message}`);
      }
    }
    await sleep(intervalMs);
  }
}

// musterd's native API over plain HTTP: {status, headers, body (parsed JSON
// when it is JSON)}.
function nativeRequest(method, path, body) {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = http.request({
      host, port: Number(portText), method, path,
      headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
      timeout: 10000,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let parsed = text;
        try { parsed = JSON.parse(text); } catch { /* not JSON: keep the text */ }
        resolve({ status: res.statusCode, headers: res.headers, body: parsed, text });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in 10 s`)));
    req.on('error', reject);
    req.end(payload);
  });
}

// Whether musterd's /healthz counts at least n blocking queries waiting
// (its "blocking_queries"), polled for up to 3 s.
async function waitForParkedQueries(n) {
  const deadline = Date.now() + 3000;
  do {
    const r = await nativeRequest('GET', '/healthz');
    if (r.status === 200 && typeof r.body === 'object' && r.body.blocking_queries >= n) return true;
    await sleep(20);
  } while (Date.now() < deadline);
  return false;
}

const ids = (entries) => entries.map((e) => e.Service.ID).sort();
const serviceCheck = (entry, checkId) => (entry.Checks || []).find((c) => c.CheckID === checkId);

test('agent.service.register with tags, meta and a TTL check is listed by agent.service.list',
  { timeout: CASE_TIMEOUT_MS }, async () => {
    const name = unique('register');
    const id = `${name}-1`;
    await ok(consul.agent.service.register({
      name, id, tags: ['primary', 'v1'], address: '127.0.0.1', port: 9101,
      meta: { zone: 'eu-1', owner: 'team-a' },
      check: { ttl: '2s', notes: 'reported by the instance' },
    }));

    const services = await ok(consul.agent.service.list());
    assert.equal(typeof services, 'object', 'agent.service.list answers an object');
    const s = services[id];
    assert.ok(s, `agent.service.list has ${id}; it has ${JSON.stringify(Object.keys(services))}`);
    assert.equal(s.ID, id);
    assert.equal(s.Service, name);
    assert.deepEqual(s.Tags, ['primary', 'v1']);
    assert.deepEqual(s.Meta, { zone: 'eu-1', owner: 'team-a' });
    assert.equal(s.Port, 9101);
    assert.equal(s.Address, '127.0.0.1');
  });

test('a TTL check starts critical, agent.check.pass makes it passing, and it lapses with "TTL expired"',
  { timeout: CASE_TIMEOUT_MS }, async () => {
    const name = unique('ttl');
    const id = `${name}-1`;
    const checkId = `service:${id}`;
    await ok(consul.agent.service.register({
      name, id, address: '127.0.0.1', port: 9102, check: { ttl: '2s' },
    }));

    let checks = await ok(consul.agent.check.list());
    let check = checks[checkId];
    assert.ok(check, `agent.check.list has ${checkId}; it has ${JSON.stringify(Object.keys(checks))}`);
    assert.equal(check.CheckID, checkId);
    assert.equal(check.Status, 'critical', 'a TTL check is critical before its first pass');
    assert.equal(check.ServiceID, id);
    assert.equal(check.ServiceName, name);
    assert.deepEqual(ids(await ok(consul.health.service({ service: name, passing: true }))), [],
      'health.service passing:true leaves out an instance whose TTL check is critical');

    const note = 'all good';
    await ok(consul.agent.check.pass({ id: checkId, note }));
    const passedAt = Date.now();
    checks = await ok(consul.agent.check.list());
    check = checks[checkId];
    assert.ok(check, `agent.check.list still has ${checkId}`);
    assert.equal(check.Status, 'passing', 'agent.check.pass makes the check passing');
    assert.equal(check.Output, note, 'the note of a pass is the check\'s Output');
    const passing = await ok(consul.health.service({ service: name, passing: true }));
    assert.deepEqual(ids(passing), [id], 'health.service passing:true shows the instance once passed');
    const entryCheck = serviceCheck(passing[0], checkId);
    assert.ok(entryCheck, `the health entry carries check ${checkId}`);
    assert.equal(entryCheck.Status, 'passing');

    // No pass for more than the ttl (2 s): the check lapses to critical.
    const lapsed = await eventually('the TTL check lapses to critical', async () => {
      const c = (await ok(consul.agent.check.list()))[checkId];
      assert.ok(c, `agent.check.list has ${checkId}`);
      assert.equal(c.Status, 'critical');
      return c;
    }, { timeoutMs: 10000, intervalMs: 200 });
    const lapsedAfter = Date.now() - passedAt;
    assert.equal(lapsed.Output, 'TTL expired');
    assert.ok(lapsedAfter >= 1500,
      `the check stayed passing for about its ttl of 2 s (lapsed after ${lapsedAfter} ms)`);
    assert.deepEqual(ids(await ok(consul.health.service({ service: name, passing: true }))), [],
      'health.service passing:true leaves the lapsed instance out again');
  });

describe('catalog and health reads of one service with passing and critical instances', () => {
  const name = unique('reads');
  const a = `${name}-a`; // TTL check, passed (ttl long enough not to lapse here)
  const b = `${name}-b`; // TTL check never passed: critical
  const c = `${name}-c`; // no checks: passing

  before(async () => {
    await ok(consul.agent.service.register({
      name, id: a, tags: ['blue', 'x'], address: '127.0.0.1', port: 9201, check: { ttl: '300s' },
    }));
    await ok(consul.agent.check.pass({ id: `service:${a}` }));
    await ok(consul.agent.service.register({
      name, id: b, tags: ['green'], address: '127.0.0.1', port: 9202, check: { ttl: '300s' },
    }));
    await ok(consul.agent.service.register({
      name, id: c, tags: ['blue'], address: '127.0.0.1', port: 9203,
    }));
  });

  test('health.service lists every instance, and only the passing ones with passing:true',
    { timeout: CASE_TIMEOUT_MS }, async () => {
      const all = await ok(consul.health.service({ service: name }));
      assert.deepEqual(ids(all), [a, b, c]);
      for (const entry of all) {
        assert.equal(entry.Service.Service, name);
        assert.ok(entry.Node && typeof entry.Node.Node === 'string', 'each entry names its Node');
        assert.ok(Array.isArray(entry.Checks), 'each entry has Checks');
      }
      assert.equal(serviceCheck(all.find((e) => e.Service.ID === b), `service:${b}`).Status, 'critical');
      assert.deepEqual(ids(await ok(consul.health.service({ service: name, passing: true }))), [a, c]);
    });

  test('health.service with a tag narrows to the instances carrying it',
    { timeout: CASE_TIMEOUT_MS }, async () => {
      assert.deepEqual(ids(await ok(consul.health.service({ service: name, tag: 'blue' }))), [a, c]);
      assert.deepEqual(ids(await ok(consul.health.service({ service: name, tag: 'green' }))), [b]);
      assert.deepEqual(ids(await ok(consul.health.service({ service: name, tag: 'green', passing: true }))), []);
      assert.deepEqual(ids(await ok(consul.health.service({ service: name, tag: 'x', passing: true }))), [a]);
    });

  test('catalog.service.list maps the service name to its tags',
    { timeout: CASE_TIMEOUT_MS }, async () => {
      const services = await ok(consul.catalog.service.list());
      assert.ok(Array.isArray(services[name]),
        `catalog.service.list has ${name}: ${bodyText(services)}`);
      assert.deepEqual([...services[name]].sort(), ['blue', 'green', 'x']);
    });

  test('catalog.service.nodes lists ServiceID, ServiceAddress and ServicePort; tag narrows',
    { timeout: CASE_TIMEOUT_MS }, async () => {
      const nodes = await ok(consul.catalog.service.nodes(name));
      assert.ok(Array.isArray(nodes), 'catalog.service.nodes answers an array');
      const byId = Object.fromEntries(nodes.map((n) => [n.ServiceID, n]));
      assert.deepEqual(Object.keys(byId).sort(), [a, b, c]);
      assert.equal(byId[a].ServiceName, name);
      assert.equal(byId[a].ServiceAddress, '127.0.0.1');
      assert.equal(byId[a].ServicePort, 9201);
      assert.deepEqual(byId[a].ServiceTags, ['blue', 'x']);
      assert.equal(byId[b].ServicePort, 9202);
      assert.equal(byId[c].ServicePort, 9203);

      const blue = await ok(consul.catalog.service.nodes({ service: name, tag: 'blue' }));
      assert.deepEqual(blue.map((n) => n.ServiceID).sort(), [a, c]);
    });
});

test('a blocking health.service query is woken by a new instance and answers a higher index',
  { timeout: CASE_TIMEOUT_MS }, async (t) => {
    const name = unique('wake');
    await ok(consul.agent.service.register({ name, id: `${name}-1`, address: '127.0.0.1', port: 9301 }));
    const first = await withResponse(healthService, { service: name });
    assert.deepEqual(ids(first.body), [`${name}-1`]);

    const started = Date.now();
    const blocked = withResponse(healthService, { service: name, index: first.index, wait: '10s' });
    blocked.catch(() => {}); // awaited below; not an unhandled rejection if the register fails
    // Let the query park before the change (an answer that did not wait would
    // lack the second instance anyway): musterd's /healthz counts the blocking
    // queries it holds.
    const parked = await waitForParkedQueries(1);
    if (!parked) t.diagnostic('musterd\'s /healthz never counted the query as parked; going on');
    await ok(consul.agent.service.register({ name, id: `${name}-2`, address: '127.0.0.1', port: 9302 }));
    const woken = await blocked;
    const took = Date.now() - started;

    assert.ok(took < 5000, `the query was woken by the registration (answered after ${took} ms, wait 10s)`);
    assert.deepEqual(ids(woken.body), [`${name}-1`, `${name}-2`]);
    assert.ok(BigInt(woken.index) > BigInt(first.index),
      `X-Consul-Index rose (${first.index} -> ${woken.index})`);
  });

test('a blocking health.service query with no change answers after its wait with the same index',
  { timeout: CASE_TIMEOUT_MS }, async () => {
    const name = unique('idle');
    await ok(consul.agent.service.register({ name, id: `${name}-1`, address: '127.0.0.1', port: 9311 }));
    const first = await withResponse(healthService, { service: name });

    const started = Date.now();
    const idle = await withResponse(healthService, { service: name, index: first.index, wait: '1s' });
    const took = Date.now() - started;

    assert.ok(took >= 900, `the query waited about 1 s (answered after ${took} ms)`);
    assert.ok(took < 5000, `the query answered soon after its wait of 1 s (after ${took} ms)`);
    assert.equal(idle.index, first.index, 'X-Consul-Index is unchanged');
    assert.deepEqual(ids(idle.body), [`${name}-1`]);
  });

test('consul.watch on health.service reports the current instances, then a new one',
  { timeout: CASE_TIMEOUT_MS }, async () => {
    const name = unique('watch');
    await ok(consul.agent.service.register({ name, id: `${name}-1`, address: '127.0.0.1', port: 9321 }));

    const watch = consul.watch({
      method: consul.health.service,
      options: { service: name, passing: true, wait: '10s' },
      maxAttempts: 1,
    });
    const changes = [];
    let notify = () => {};
    let failure;
    watch.on('change', (data, res) => {
      changes.push({ ids: ids(data), index: res.headers['x-consul-index'] });
      notify();
    });
    watch.on('error', (err) => {
      failure = err;
      notify();
    });
    const next = (count, what) => new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`watch: no ${what} in 8 s`)), 8000);
      notify = () => {
        if (failure) {
          clearTimeout(timer);
          reject(new Error(`watch error: ${describeError(failure)}`));
        } else if (changes.length >= count) {
          clearTimeout(timer);
          resolve(changes[count - 1]);
        }
      };
      notify();
    });

    try {
      const initial = await next(1, 'first change event');
      assert.deepEqual(initial.ids, [`${name}-1`]);
      await ok(consul.agent.service.register({ name, id: `${name}-2`, address: '127.0.0.1', port: 9322 }));
      const added = await next(2, 'change event after the second registration');
      assert.deepEqual(added.ids, [`${name}-1`, `${name}-2`]);
      assert.ok(BigInt(added.index) > BigInt(initial.index),
        `X-Consul-Index rose (${initial.index} -> ${added.index})`);
    } finally {
      watch.end();
    }
  });

test('agent.service.maintenance takes an instance out of the passing set and back',
  { timeout: CASE_TIMEOUT_MS }, async () => {
    const name = unique('maint');
    const id = `${name}-1`;
    const reason = 'upgrading';
    await ok(consul.agent.service.register({ name, id, address: '127.0.0.1', port: 9401 }));
    assert.deepEqual(ids(await ok(consul.health.service({ service: name, passing: true }))), [id]);

    await ok(consul.agent.service.maintenance({ id, enable: true, reason }));
    assert.deepEqual(ids(await ok(consul.health.service({ service: name, passing: true }))), [],
      'an instance in maintenance is not passing');
    const all = await ok(consul.health.service({ service: name }));
    assert.deepEqual(ids(all), [id], 'an instance in maintenance stays registered');
    const maint = serviceCheck(all[0], `_service_maintenance:${id}`);
    assert.ok(maint, `the entry carries the check _service_maintenance:${id}: ${bodyText(all[0].Checks)}`);
    assert.equal(maint.Status, 'critical');
    // The reason is not kept (docs/consul.md): the maintenance is the
    // instance's disabled status; Notes says so in Consul's default words.
    assert.ok(maint.Notes.length > 0);

    await ok(consul.agent.service.maintenance({ id, enable: false }));
    const back = await ok(consul.health.service({ service: name, passing: true }));
    assert.deepEqual(ids(back), [id], 'enable:false brings the instance back');
    assert.equal(serviceCheck(back[0], `_service_maintenance:${id}`), undefined,
      'the maintenance check is gone');
  });

test('agent.service.deregister removes the instance from the agent and the catalog',
  { timeout: CASE_TIMEOUT_MS }, async () => {
    const name = unique('dereg');
    const id = `${name}-1`;
    await ok(consul.agent.service.register({
      name, id, tags: ['t'], address: '127.0.0.1', port: 9501, check: { ttl: '30s' },
    }));
    assert.ok((await ok(consul.agent.service.list()))[id], 'registered');
    assert.ok((await ok(consul.agent.check.list()))[`service:${id}`], 'its check is listed');
    assert.deepEqual((await ok(consul.catalog.service.nodes(name))).map((n) => n.ServiceID), [id]);

    await ok(consul.agent.service.deregister(id));
    assert.equal((await ok(consul.agent.service.list()))[id], undefined,
      'agent.service.list no longer has it');
    assert.equal((await ok(consul.agent.check.list()))[`service:${id}`], undefined,
      'agent.check.list no longer has its check');
    assert.deepEqual(await ok(consul.catalog.service.nodes(name)), [],
      'catalog.service.nodes has no instance of it');
    assert.equal((await ok(consul.catalog.service.list()))[name], undefined,
      'catalog.service.list no longer names the service');
    assert.deepEqual(await ok(consul.health.service({ service: name })), []);
  });

test('an instance registered through the native API is seen by health.service',
  { timeout: CASE_TIMEOUT_MS }, async () => {
    const name = unique('native');
    const id = `${name}-1`;
    const put = await nativeRequest('PUT', `/api/v1/services/${name}/instances/${id}`,
      { address: '127.0.0.1:9001', tags: ['a'], ttl_seconds: 0 });
    assert.ok(put.status === 200 || put.status === 201,
      `native register answered ${put.status}: ${put.text}`);

    const entries = await ok(consul.health.service({ service: name }));
    assert.deepEqual(ids(entries), [id]);
    const s = entries[0].Service;
    assert.equal(s.Service, name);
    assert.equal(s.Address, '127.0.0.1');
    assert.equal(s.Port, 9001);
    assert.deepEqual(s.Tags, ['a']);
    assert.deepEqual(ids(await ok(consul.health.service({ service: name, passing: true }))), [id],
      'an instance with no lease and no checks is passing');
  });

test('an instance registered through the consul package is listed by the native API',
  { timeout: CASE_TIMEOUT_MS }, async () => {
    const name = unique('tonative');
    const id = `${name}-1`;
    await ok(consul.agent.service.register({
      name, id, tags: ['b'], address: '127.0.0.1', port: 9601, meta: { zone: 'eu-2' },
    }));

    const list = await nativeRequest('GET', `/api/v1/services/${name}/instances`);
    assert.equal(list.status, 200, `native list answered ${list.status}: ${list.text}`);
    assert.equal(typeof list.body.revision, 'number', `the list has a revision: ${list.text}`);
    assert.ok(Array.isArray(list.body.instances), `the list has instances: ${list.text}`);
    assert.deepEqual(list.body.instances.map((i) => i.id), [id]);
    const instance = list.body.instances[0];
    assert.equal(instance.service, name);
    assert.equal(instance.address, '127.0.0.1:9601');
    assert.deepEqual(instance.tags, ['b']);
    assert.equal(instance.metadata.zone, 'eu-2');
  });

test('status.leader names a leader and agent.self is in datacenter dc1',
  { timeout: CASE_TIMEOUT_MS }, async () => {
    const leader = await ok(consul.status.leader());
    assert.equal(typeof leader, 'string', `status.leader answers a string: ${bodyText(leader)}`);
    assert.notEqual(leader, '');

    const self = await ok(consul.agent.self());
    assert.ok(self && self.Config, `agent.self has Config: ${bodyText(self)}`);
    assert.equal(self.Config.Datacenter, 'dc1');
  });
