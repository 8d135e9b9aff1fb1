// The fwasm console: reads the upload port's JSON APIs (the same ones scripts use) as the
// token given, and nothing from any other origin. Every value from the server is shown as
// text, never as markup.
"use strict";

const $ = (id) => document.getElementById(id);
// What the page shows, and which "Show" it is for: an answer to an earlier one (another
// user's, another token's) arriving late is dropped.
// Within one, only the latest listing of calls, and the call last clicked, are shown.
const seen = { user: "", token: "", chosen: null, generation: 0, listing: 0, refreshing: false };

class Stale extends Error {}

async function api(path, options = {}) {
  const generation = seen.generation;
  const headers = seen.token ? { Authorization: `Bearer ${seen.token}` } : {};
  const response = await fetch(path, { ...options, headers });
  const body = await response.text();
  if (generation !== seen.generation) throw new Stale();
  if (!response.ok) {
    throw new Error(`${response.status} ${response.statusText}: ${body.trim()}`);
  }
  return body;
}

const json = async (path, options) => JSON.parse(await api(path, options));
const user = () => encodeURIComponent(seen.user);

function problem(error) {
  if (error instanceof Stale) return;
  const shown = $("problem");
  shown.hidden = !error;
  shown.textContent = error ? error.message : "";
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

const ms = (micros) => `${(micros / 1000).toFixed(micros < 10000 ? 2 : 0)} ms`;
const size = (n) => (n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(1)} MiB`);

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

// An admin (or an open `fwasm up`) may list users; a user's token may not, and names its own.
async function loadUsers() {
  try {
    const { users } = await json("/users");
    $("users").replaceChildren(...users.map((name) => new Option(name, name)));
  } catch (error) {
    if (!(error instanceof Stale)) $("users").replaceChildren();
  }
}

async function loadFunctions() {
  const functions = await json(`/f/${user()}`);
  const body = $("functions").tBodies[0];
  const select = $("function");
  const chosen = select.value;
  body.replaceChildren();
  select.replaceChildren();
  for (const f of functions) {
    const row = body.insertRow();
    const s = f.settings;
    const limits = [s.timeout_seconds && `timeout ${s.timeout_seconds} s`, s.memory_mib && `memory ${s.memory_mib} MiB`];
    cell(row, f.name);
    cell(row, f.abi);
    cell(row, size(f.size));
    cell(row, f.uploaded_at || "-");
    cell(row, limits.filter(Boolean).join(", ") || "platform's");
    cell(row, Object.entries(s.env).map(([k, v]) => `${k}=${v}`).join(" "));
    cell(row, s.allow_hosts.join(" "));
    select.append(new Option(f.name, f.name));
  }
  if (functions.some((f) => f.name === chosen)) select.value = chosen;
}

function figures(calls) {
  const now = Date.now();
  const lastMinute = calls.filter((c) => c.submitted_at && now - Date.parse(c.submitted_at) < 60000);
  const ended = calls.filter((c) => c.finished_at).map((c) => c.exec_micros).sort((a, b) => a - b);
  $("rate").textContent = (lastMinute.length / 60).toFixed(2);
  $("p50").textContent = ended.length ? ms(quantile(ended, 0.5)) : "-";
  $("p99").textContent = ended.length ? ms(quantile(ended, 0.99)) : "-";
  $("cold").textContent = String(calls.filter((c) => c.cold_start).length);
  $("failed").textContent = String(calls.filter((c) => c.status === "FAILED").length);
}

async function loadCalls() {
  const listing = ++seen.listing;
  const calls = await json(`/calls?user=${user()}&limit=1000`);
  if (listing !== seen.listing) return;
  figures(calls);
  const body = $("calls").tBodies[0];
  body.replaceChildren();
  for (const call of calls.slice(0, 50)) {
    const row = body.insertRow();
    row.dataset.id = String(call.id);
    row.className = seen.chosen === call.id ? "chosen" : "";
    cell(row, String(call.id));
    cell(row, call.function);
    cell(row, call.failure === "CANCELLED" ? "CANCELLED" : call.status, call.status);
    cell(row, call.finished_at ? ms(call.exec_micros) : "-");
    cell(row, call.cold_start ? "cold" : "");
    cell(row, call.submitted_at || "-");
    cell(row, call.trace_id || "-");
    const actions = row.insertCell();
    if (call.status === "RUNNING" || call.status === "QUEUED") {
      const cancel = document.createElement("button");
      cancel.textContent = "Cancel";
      cancel.onclick = (event) => {
        event.stopPropagation();
        cancelCall(call.id);
      };
      actions.append(cancel);
    }
    row.onclick = () => showCall(call.id).catch(problem);
  }
}

async function showCall(id) {
  seen.chosen = id;
  const call = await json(`/calls/${id}`);
  if (seen.chosen !== id) return;
  const status = call.failure === "CANCELLED" ? "CANCELLED" : call.status;
  $("call-title").textContent = `Call ${call.id}: ${call.user}/${call.function}, ${status}`;
  const lines = [];
  if (call.error) lines.push(`error: ${call.error}`);
  if (call.parent_id) lines.push(`chained by call ${call.parent_id}`);
  lines.push(`executor: ${call.executor || "-"}`, `trace id: ${call.trace_id || "-"}`);
  lines.push(`output: ${call.output}`);
  if (call.stdout) lines.push(`stdout: ${call.stdout}`);
  lines.push(`logs:\n${call.logs || "(none)"}`);
  $("call-body").textContent = lines.join("\n");
  $("call").hidden = false;
  for (const row of $("calls").tBodies[0].rows) {
    row.className = row.dataset.id === String(id) ? "chosen" : "";
  }
}

async function cancelCall(id) {
  try {
    await api(`/cancel/${id}`, { method: "POST" });
  } catch (error) {
    problem(error);
  }
  await loadCalls().catch(problem);
}

async function loadKeys() {
  const { keys, truncated } = await json(`/s/${user()}?limit=200`);
  const items = keys.map((key) => {
    const item = document.createElement("li");
    item.textContent = key;
    return item;
  });
  if (truncated) {
    const more = document.createElement("li");
    more.textContent = "(more: list them with `fwasm state list`)";
    items.push(more);
  }
  $("keys").replaceChildren(...items);
}

async function refreshAll() {
  if (!seen.user) return;
  try {
    await Promise.all([loadFunctions(), loadCalls(), loadKeys()]);
    problem(null);
  } catch (error) {
    problem(error);
  }
}

// The timer's refresh: skipped while the last one is still on its way.
async function refreshCalls() {
  if (!seen.user || seen.refreshing) return;
  seen.refreshing = true;
  try {
    await loadCalls();
  } catch (error) {
    problem(error);
  } finally {
    seen.refreshing = false;
  }
}

$("who").addEventListener("submit", (event) => {
  event.preventDefault();
  seen.token = $("token").value.trim();
  seen.user = $("user").value.trim();
  seen.chosen = null;
  seen.generation += 1;
  problem(null);
  $("call").hidden = true;
  sessionStorage.setItem("fwasm-token", seen.token);
  sessionStorage.setItem("fwasm-user", seen.user);
  loadUsers();
  refreshAll();
});

$("invoke").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = $("function").value;
  const result = $("result");
  result.hidden = false;
  result.className = "RUNNING";
  result.textContent = `Calling ${seen.user}/${name} ...`;
  try {
    const path = `/invoke/${user()}/${encodeURIComponent(name)}`;
    const call = await json(path, { method: "POST", body: $("input").value });
    result.className = call.status;
    result.dataset.callId = String(call.id);
    const lines = [`call ${call.id}: ${call.status} in ${ms(call.exec_micros)}${call.cold_start ? " (cold start)" : ""}`];
    lines.push(call.error ? `error: ${call.error}` : `output: ${call.output}`);
    if (call.logs) lines.push(`logs:\n${call.logs}`);
    result.textContent = lines.join("\n");
  } catch (error) {
    // Shown for another user or token by now: its outcome is in that user's calls.
    result.hidden = error instanceof Stale;
    result.className = "FAILED";
    result.textContent = error.message;
  }
  await refreshAll();
});

// Where the last visit left off (this tab only).
$("token").value = sessionStorage.getItem("fwasm-token") || "";
$("user").value = sessionStorage.getItem("fwasm-user") || $("user").value;
$("who").requestSubmit();
setInterval(refreshCalls, 2000);
