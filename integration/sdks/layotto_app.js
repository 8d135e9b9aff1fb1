'use strict';
// An app written against Layotto's official Node.js SDK (npm `layotto`), run against fwasm
// (not a Layotto sidecar).
//
// Started by the SDK tests with FWASM_GRPC_PORT set to fwasm's gRPC port on 127.0.0.1,
// STORE to the fwasm user it uses as store and pubsub, APP to the user whose `hello` it
// invokes (the demo one by default), and NODE_PATH to the
// node_modules holding `layotto`; with FWASM_TOKEN (fwasm up --auth), it sends that token on
// every request through the SDK's metadata hook, and OTHER_STORE names a user the token must
// not reach. Prints "layotto sdk: ok" when every check holds, else names the check that failed
// and exits 1.

const assert = require('node:assert/strict');
const { Client, RuntimeTypes } = require('layotto');

const store = process.env.STORE || 'nodeapp';
const app = process.env.APP || 'demo'; // the user whose `hello` it invokes
const token = process.env.FWASM_TOKEN;
const options = token ? { createMetadataHook: () => ({ authorization: `Bearer ${token}` }) } : {};
const client = new Client(process.env.FWASM_GRPC_PORT, '127.0.0.1', options);
const { Status: Unlock } = RuntimeTypes.UnlockResponse;
const { Verb } = RuntimeTypes.HTTPExtension;

const code = { INVALID_ARGUMENT: 3, NOT_FOUND: 5, PERMISSION_DENIED: 7, ABORTED: 10 };
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));
const text = bytes => Buffer.from(bytes).toString('utf8');

// The SDK rejects with @grpc/grpc-js's ServiceError, whose `code` is the gRPC status code.
async function refusedWith(expected, call, what) {
  try {
    await call();
  } catch (err) {
    assert.equal(err.code, expected, `${what}: wanted gRPC code ${expected}, got ${err.code} (${err.details || err.message})`);
    return;
  }
  assert.fail(`${what}: wanted gRPC code ${expected}, the call succeeded`);
}

// The SDK's get answers null for a key with no data and no etag (a missing key).
async function read(key, storeName = store) {
  const item = await client.state.get({ storeName, key });
  return item && { value: text(item.value), etag: item.etag };
}

let firstK; // k's first etag: stale once k is written again, so the later checks reuse it

async function state() {
  await client.state.save({ storeName: store, states: { key: 'k', value: 'v1' } });
  const first = await read('k');
  assert.ok(first && first.value === 'v1' && first.etag, `first read: ${JSON.stringify(first)}`);
  await client.state.save({ storeName: store, states: { key: 'k', value: 'v2', etag: first.etag } });
  const second = await read('k');
  assert.equal(second.value, 'v2');
  assert.notEqual(second.etag, first.etag, 'a write changes the etag');
  await refusedWith(code.ABORTED, () => client.state.save({
    storeName: store, states: { key: 'k', value: 'v3', etag: first.etag },
  }), 'save with a stale etag');
  await refusedWith(code.INVALID_ARGUMENT, () => read('k', 'not/a/user'), 'get from a store that is no user');
  firstK = first.etag;
}

async function bulkState() {
  await client.state.save({ storeName: store, states: [{ key: 'a', value: '1' }] });
  const items = await client.state.getBulk({ storeName: store, keys: ['a', 'k', 'missing'] });
  // The SDK drops items with empty data, so the missing key is absent rather than empty.
  assert.deepEqual(items.map(i => [i.key, text(i.value)]), [['a', '1'], ['k', 'v2']]);
}

async function transaction() {
  await client.state.executeTransaction({
    storeName: store,
    operations: [
      { operationType: 'upsert', request: { key: 'a', value: '10' } },
      { operationType: 'delete', request: { key: 'k' } },
    ],
  });
  assert.equal((await read('a')).value, '10');
  assert.equal(await read('k'), null, 'k was deleted by the transaction');
  await refusedWith(code.ABORTED, () => client.state.executeTransaction({
    storeName: store,
    operations: [
      { operationType: 'upsert', request: { key: 'a', value: '11' } },
      { operationType: 'upsert', request: { key: 'b', value: '2', etag: firstK } },
    ],
  }), 'transaction with a stale etag');
  assert.equal((await read('a')).value, '10', 'the refused transaction left a alone');
  assert.equal(await read('b'), null, 'the refused transaction wrote no b');
}

async function deleteState() {
  const a = await read('a');
  await refusedWith(code.ABORTED, () => client.state.delete({ storeName: store, key: 'a', etag: firstK }),
    'delete with a stale etag');
  await client.state.delete({ storeName: store, key: 'a', etag: a.etag });
  assert.equal(await read('a'), null, 'a was deleted');
}

async function lock() {
  const lockReq = (lockOwner, expire = 10) => ({ storeName: store, resourceId: 'res', lockOwner, expire });
  assert.equal(await client.lock.tryLock(lockReq('owner-1')), true, 'owner-1 takes the free lock');
  assert.equal(await client.lock.tryLock(lockReq('owner-2')), false, 'owner-2 cannot take a held lock');
  assert.equal(await client.lock.tryLock(lockReq('owner-1')), false, 'the lock is not reentrant');
  const unlock = async lockOwner => (await client.lock.unLock(lockReq(lockOwner))).status;
  assert.equal(await unlock('owner-2'), Unlock.LOCK_BELONG_TO_OTHERS);
  assert.equal(await unlock('owner-1'), Unlock.SUCCESS);
  assert.equal(await unlock('owner-1'), Unlock.LOCK_UNEXIST);
  await refusedWith(code.INVALID_ARGUMENT, () => client.lock.tryLock(lockReq('owner-1', 0)), 'tryLock with expire 0');
}

async function sequencer() {
  // next_id is an int64 the SDK hands back as a decimal string.
  const ids = [];
  for (let i = 0; i < 3; i++) ids.push(BigInt(await client.sequencer.getNextId({ storeName: store, key: 'seq' })));
  assert.ok(ids[0] >= 1n && ids[0] < ids[1] && ids[1] < ids[2], `ids ${ids.join(', ')}`);
}

async function invoke() {
  // The SDK's default verb is GET, with the string sent as text/plain; a text/plain reply
  // comes back decoded as a string.
  const byDefault = await client.invoker.invoke({ id: app, method: 'hello', data: 'node' });
  assert.deepEqual(byDefault, { contentType: 'text/plain', content: 'Hello, node!' });
  const posted = await client.invoker.invoke({ id: app, method: 'hello', data: 'node', httpVerb: Verb.POST });
  assert.equal(posted.content, 'Hello, node!');
}

async function pubsub() {
  await client.state.delete({ storeName: store, key: 'last-event' }); // no leftover passes for this event
  await client.pubsub.publish({ pubsubName: store, topic: 'orders', data: { order: 7 } });
  // The test's subscriber stores each event it gets at last-event; delivery is asynchronous.
  const deadline = Date.now() + 30_000;
  let stored = await read('last-event');
  while (!stored && Date.now() < deadline) {
    await sleep(50);
    stored = await read('last-event');
  }
  assert.ok(stored, 'the subscriber stored no event within 30 s');
  const event = JSON.parse(stored.value);
  assert.equal(event.topic, 'orders', stored.value);
  assert.deepEqual(event.data, { order: 7 }, stored.value);
}

async function getFile(name) {
  const chunks = [];
  for await (const chunk of await client.file.get({ storeName: store, name })) chunks.push(chunk);
  return text(Buffer.concat(chunks));
}

async function files() {
  const name = 'docs/a.txt';
  await client.file.put({ storeName: store, name, data: Buffer.from('hello file') });
  // put resolves once the upload is sent, not when the server answers (and hides its
  // errors), so the file may show up a moment later.
  let got;
  for (const deadline = Date.now() + 30_000; got === undefined;) {
    try {
      got = await getFile(name);
    } catch (err) {
      if (err.code !== code.NOT_FOUND) throw err;
      assert.ok(Date.now() < deadline, `the put ${name} is still not found after 30 s (put itself hides a refusal)`);
      await sleep(50);
    }
  }
  assert.equal(got, 'hello file');

  const listed = await client.file.list({ storeName: store, name: 'docs/' });
  assert.deepEqual(listed.names, [name]);
  // The SDK's list gives names only; the size is read with its generated stub directly (with
  // the SDK's metadata, which carries the token).
  const request = new RuntimeTypes.FileRequest();
  request.setStoreName(store);
  request.setName('docs/');
  const listReq = new RuntimeTypes.ListFileRequest();
  listReq.setRequest(request);
  const resp = await new Promise((resolve, reject) =>
    client._runtime.listFile(listReq, client.file.createMetadata({}), (err, res) => (err ? reject(err) : resolve(res))));
  assert.deepEqual(resp.getFilesList().map(f => [f.getFileName(), Number(f.getSize())]), [[name, 10]]);

  await client.file.delete({ storeName: store, name });
  await refusedWith(code.NOT_FOUND, () => getFile(name), 'getFile after delFile');
}

// With a token: another user's state, lock and files are refused, whatever the app asks.
async function othersAreRefused() {
  const other = process.env.OTHER_STORE;
  if (!other) return;
  const denied = code.PERMISSION_DENIED;
  await refusedWith(denied, () => read('k', other), "get of another user's state");
  await refusedWith(denied, () => client.state.save({ storeName: other, states: { key: 'k', value: 'x' } }),
    "save of another user's state");
  await refusedWith(denied, () => client.lock.tryLock({ storeName: other, resourceId: 'r', lockOwner: 'me', expire: 5 }),
    "lock of another user's resource");
  await refusedWith(denied, async () => {
    for await (const _ of await client.file.get({ storeName: other, name: 'docs/a.txt' })) { /* none */ }
  }, "get of another user's file");
}

async function main() {
  const checks = [state, bulkState, transaction, deleteState, lock, sequencer, invoke, pubsub, files, othersAreRefused];
  let current;
  // Until every check held, an exit for any reason (even an emptied event loop) is a failure.
  process.exitCode = 1;
  // A call the server never answers would hang the test; name the check instead.
  setTimeout(() => {
    console.error(`layotto sdk: check ${current} timed out`);
    process.exit(1);
  }, 120_000).unref();
  for (const check of checks) {
    current = check.name;
    try {
      await check();
    } catch (err) {
      console.error(`layotto sdk: check ${check.name} failed: ${err.stack || err}`);
      process.exit(1);
    }
  }
  client.close();
  process.exitCode = 0;
  console.log('layotto sdk: ok');
}

main();
