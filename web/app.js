// The wallet page: plain DOM code around the dLocker SDK (WebAssembly). Every protocol step and
// every check (splitting, sealing, receipts, share verification) runs inside the SDK; this file
// only shows what happens.

import init, { DlockerClient, version } from "./pkg/dlocker_web.js";
import { passkey } from "./passkey.js";
import { newStateKey, openStateKey } from "./keystore.js";

const $ = (id) => document.getElementById(id);
const STORAGE_KEY = "dlocker.lastBackup";
// A recovery in progress: its sealed state after the last step and the wrapped state key.
const RECOVERY_KEY = "dlocker.recoveryInProgress";

let client = null;
let trustees = [];

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

function randomHex(bytes) {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function newWalletId() {
  return `wallet-${randomHex(6)}`;
}

// A generated secret shown in groups of four so it can be copied by hand.
function newSecret() {
  return randomHex(16).match(/.{4}/g).join(" ");
}

function roleLabel(role) {
  return role === "bank" ? "your bank" : "independent trustee";
}

function setStatus(node, text, kind = "") {
  node.textContent = text;
  node.className = `note ${kind}`.trim();
}

function friendlyError(e) {
  const msg = String(e && e.message ? e.message : e);
  if (/NotAllowedError/.test(msg)) {
    return "The passkey prompt was dismissed or no matching passkey was found. Nothing was changed; you can try again.";
  }
  return msg;
}

function formatDuration(secs) {
  const s = Math.max(0, Math.round(secs));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  if (d > 0) return `${d} d ${h} h ${m} min`;
  if (h > 0) return `${h} h ${String(m).padStart(2, "0")} min`;
  return `${m}:${String(r).padStart(2, "0")}`;
}

// ---------------------------------------------------------------------------------------------
// Tabs

function showTab(which) {
  for (const name of ["backup", "recover"]) {
    const on = name === which;
    $(name).hidden = !on;
    $(`tab-${name}`).setAttribute("aria-selected", String(on));
  }
}

// ---------------------------------------------------------------------------------------------
// Back up

function fillBackupForm() {
  $("generated-secret").textContent = newSecret();
  $("wallet-id").textContent = newWalletId();
  const list = $("trustee-list");
  list.replaceChildren(
    ...trustees.map((t) =>
      el("li", {}, el("strong", {}, t.name), " — ", roleLabel(t.role), el("span", { class: "endpoint" }, ` ${t.endpoint}`)),
    ),
  );
  const n = trustees.length;
  const sel = $("threshold");
  sel.replaceChildren();
  for (let k = 2; k <= n; k++) sel.append(el("option", { value: String(k), textContent: `${k} of ${n}` }));
  sel.value = String(Math.min(n, Math.max(2, Math.floor(n / 2) + 1)));
  updateThresholdHint();
}

function updateThresholdHint() {
  const k = Number($("threshold").value);
  const n = trustees.length;
  $("threshold-hint").textContent =
    `Any ${k} of the ${n} trustees together can release your secret, and only with your passkey and your bank's approval. ` +
    `Up to ${n - k} can be lost or unreachable.`;
}

function secretBytes() {
  const paste = $("secret-paste").checked;
  const text = paste ? $("secret-text").value.trim() : $("generated-secret").textContent;
  return new TextEncoder().encode(text);
}

async function doBackup(ev) {
  ev.preventDefault();
  const progress = $("backup-progress");
  const secret = secretBytes();
  if (secret.length === 0) {
    setStatus(progress, "Type or paste the secret to protect first.", "error");
    $("secret-text").focus();
    return;
  }
  const userName = $("user-name").value.trim();
  if (!userName) {
    setStatus(progress, "Enter your name: your passkey manager shows it.", "error");
    $("user-name").focus();
    return;
  }
  const walletId = $("wallet-id").textContent;
  const options = {
    threshold: Number($("threshold").value),
    recoveryDelaySecs: Math.max(0, Math.floor(Number($("delay").value) || 0)),
    userName,
  };
  $("backup-button").disabled = true;
  $("backup-result").hidden = true;
  const lines = new Map();
  progress.replaceChildren();
  const line = (trustee, text, kind = "") => {
    let li = lines.get(trustee);
    if (!li) {
      li = el("p");
      lines.set(trustee, li);
      progress.append(li);
    }
    li.className = kind;
    li.textContent = `${trustee}: ${text}`;
  };
  const started = performance.now();
  try {
    const res = await client.backup(walletId, secret, options, (e) => {
      switch (e.type) {
        case "trusteeStarted": line(e.trustee, "preparing…"); break;
        case "passkeyRequested": line("Passkey", "confirm with your passkey (one touch for all trustees)"); break;
        case "trusteeDone": line(e.trustee, `stored piece ${e.shareIndex} ✓`, "ok"); break;
        case "trusteeFailed": line(e.trustee, `failed: ${e.reason}`, "error"); break;
      }
    });
    const elapsed = performance.now() - started;
    document.body.dataset.backupMs = String(Math.round(elapsed));
    progress.replaceChildren();
    showReceipts(res, options);
    localStorage.setItem(STORAGE_KEY, JSON.stringify({ walletId: res.walletId, manifest: res.manifest }));
    $("recover-wallet").value = res.walletId;
  } catch (e) {
    setStatus(progress, `Backup failed: ${friendlyError(e)}`, "error");
  } finally {
    $("backup-button").disabled = false;
    secret.fill(0);
  }
}

function showReceipts(res, options) {
  const byName = new Map(trustees.map((t) => [t.name, t]));
  $("receipts").replaceChildren(
    ...res.receipts.map((r) =>
      el(
        "tr",
        { "data-trustee": r.trustee },
        el("th", { scope: "row" }, `${r.trustee} (${roleLabel(byName.get(r.trustee)?.role)})`),
        el("td", {}, String(r.shareIndex)),
        el("td", {}, "signed receipt, verified ✓"),
      ),
    ),
  );
  $("backup-summary").textContent =
    `Wallet ${res.walletId} is backed up: ${options.threshold} of ${res.receipts.length} pieces are needed to recover, ` +
    `after your bank approves and a waiting period of ${formatDuration(options.recoveryDelaySecs)}. ` +
    `Manifest ${res.manifestHash.slice(0, 16)}…`;
  $("backup-form").hidden = true;
  $("backup-result").hidden = false;
  $("verify-result").hidden = true;
  $("backup-result").dataset.manifest = res.manifest;
  $("backup-result").dataset.walletId = res.walletId;
  const linked = localStorage.getItem(walletKeyItem(res.walletId)) !== null;
  $("link-docs-button").hidden = linked;
  $("link-docs-button").disabled = false;
  $("refresh-docs-button").hidden = !linked;
  $("docs-table").hidden = true;
  setStatus($("docs-status"), "");
}

async function doVerify() {
  const manifest = $("backup-result").dataset.manifest;
  $("verify-button").disabled = true;
  $("verify-result").hidden = false;
  $("health").replaceChildren();
  setStatus($("verify-summary"), "Asking each trustee to prove it holds its piece…");
  try {
    const health = await client.verifyBackup(manifest);
    $("health").replaceChildren(
      ...health.map((h) =>
        el(
          "tr",
          { "data-trustee": h.trustee, "data-healthy": String(h.healthy), class: h.healthy ? "ok" : "error" },
          el("th", { scope: "row" }, h.trustee),
          el("td", {}, String(h.shareIndex)),
          el("td", {}, h.healthy ? "holds its piece ✓" : `problem: ${h.detail}`),
        ),
      ),
    );
    const good = health.filter((h) => h.healthy).length;
    setStatus(
      $("verify-summary"),
      good === health.length
        ? `All ${good} trustees proved they hold their piece.`
        : `${good} of ${health.length} trustees proved they hold their piece. Contact your bank about the others.`,
      good === health.length ? "ok" : "error",
    );
  } catch (e) {
    setStatus($("verify-summary"), `Check failed: ${friendlyError(e)}`, "error");
  } finally {
    $("verify-button").disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Documents

// The wallet key the bank's locker knows this wallet by. A wallet app keeps it in the device's
// keystore; this page keeps it in the browser's storage for the wallet.
const walletKeyItem = (walletId) => `dlocker.walletKey.${walletId}`;

function docRows(docs, tbody, table) {
  tbody.replaceChildren(
    ...docs.map((d) => {
      const details = Object.entries(d.claims).map(([k, v]) => `${k}: ${v}`).join(", ");
      const until = d.validUntil ? ` Valid until ${new Date(d.validUntil * 1000).toLocaleDateString()}.` : "";
      let check;
      if (d.state === "awaiting_issuer") check = "waiting for the issuer to re-issue it";
      else if (d.verified) check = `signature, issuer and status checked ✓ (bound to key ${d.boundTo.slice(0, 12)}…)`;
      else check = `problem: ${d.status === "revoked" ? "revoked" : d.problems.join("; ")}`;
      return el(
        "tr",
        { "data-uri": d.uri, "data-verified": String(d.verified), "data-bound-to": d.boundTo, class: d.verified ? "ok" : "error" },
        el("th", { scope: "row" }, `${d.docType} `, el("span", { class: "mono small" }, d.uri)),
        el("td", {}, d.issuerName || d.issuerId),
        el("td", {}, details + until),
        el("td", {}, check),
      );
    }),
  );
  table.hidden = false;
}

async function doLinkDocs() {
  const walletId = $("backup-result").dataset.walletId;
  $("link-docs-button").disabled = true;
  setStatus($("docs-status"), "Confirm with your passkey to link this wallet to your bank's document locker…");
  try {
    const key = await client.linkDocuments(walletId);
    localStorage.setItem(walletKeyItem(walletId), key.walletKey);
    $("link-docs-button").hidden = true;
    $("refresh-docs-button").hidden = false;
    document.body.dataset.docsLinked = "true";
    setStatus($("docs-status"), `Linked: your bank can now issue documents to this wallet (key ${key.publicKey.slice(0, 12)}…).`, "ok");
  } catch (e) {
    $("link-docs-button").disabled = false;
    setStatus($("docs-status"), `Linking failed: ${friendlyError(e)}`, "error");
  }
}

async function doListDocs() {
  const walletId = $("backup-result").dataset.walletId;
  const key = localStorage.getItem(walletKeyItem(walletId));
  if (!key) {
    setStatus($("docs-status"), "This browser holds no wallet key for this wallet: link it first.", "error");
    return;
  }
  $("refresh-docs-button").disabled = true;
  setStatus($("docs-status"), "Reading your documents and checking each one…");
  try {
    const docs = await client.listDocuments(walletId, key);
    docRows(docs, $("docs"), $("docs-table"));
    document.body.dataset.documents = String(docs.length);
    setStatus(
      $("docs-status"),
      docs.length === 0 ? "No documents yet: your bank issues them after its checks." : `${docs.length} document(s).`,
      "ok",
    );
  } catch (e) {
    setStatus($("docs-status"), `Could not read your documents: ${friendlyError(e)}`, "error");
  } finally {
    $("refresh-docs-button").disabled = false;
  }
}

async function doReissue() {
  $("reissue-button").disabled = true;
  setStatus($("reissue-status"), "Confirm with your passkey to move your documents to this device…");
  try {
    const res = await client.reissueDocuments();
    localStorage.setItem(walletKeyItem($("recover-result").dataset.walletId), res.walletKey);
    docRows(res.reissued, $("reissued"), $("reissued-table"));
    document.body.dataset.reissued = String(res.reissued.length);
    document.body.dataset.newWalletKey = res.publicKey;
    const waiting = res.awaitingIssuer.length ? ` ${res.awaitingIssuer.length} more follow when their issuer re-issues them.` : "";
    setStatus(
      $("reissue-status"),
      `${res.reissued.length} document(s) now belong to this device (key ${res.publicKey.slice(0, 12)}…); ` +
        `${res.revoked} old credential(s) revoked, ${res.consentsCarriedOver} consent(s) kept.${waiting}`,
      "ok",
    );
    $("reissue-button").hidden = true;
  } catch (e) {
    $("reissue-button").disabled = false;
    setStatus($("reissue-status"), `Moving your documents failed: ${friendlyError(e)}`, "error");
  }
}

// ---------------------------------------------------------------------------------------------
// Recover

function step(id, state) {
  const li = $(id);
  li.dataset.state = state; // "", "active", "done", "failed"
  if (state === "active") li.setAttribute("aria-current", "step");
  else li.removeAttribute("aria-current");
}

function resetRecoverView() {
  for (const id of ["step-passkey", "step-bank", "step-wait", "step-verify", "step-done"]) step(id, "");
  $("bank-detail").textContent = "";
  $("countdown").textContent = "";
  $("wait-detail").textContent = "";
  $("shares").replaceChildren();
  $("sessions").replaceChildren();
  $("sessions-box").hidden = true;
  $("recover-result").hidden = true;
  $("recovered-secret").textContent = "";
  $("cancel-box").hidden = true;
  $("cancel-button").disabled = false;
  setStatus($("recover-status"), "");
}

let recovering = false;
let cancelling = false;
// When the page started waiting for the bank and when the bank approved (performance.now()),
// so the time the page itself took can be told apart from the bank's.
let awaitingAt = null;
let approvedAt = null;

async function doRecover(ev) {
  ev.preventDefault();
  const walletId = $("recover-wallet").value.trim();
  if (!walletId) {
    $("recover-wallet").focus();
    return;
  }
  let stateKey;
  try {
    stateKey = await newStateKey();
  } catch (e) {
    setStatus($("recover-status"), `This browser cannot keep a recovery's state: ${friendlyError(e)}`, "error");
    return;
  }
  await runRecovery(walletId, stateKey.wrapped, (onEvent) =>
    client.recover(walletId, onEvent, { pollIntervalMs: 500 }, stateKey.key).finally(() => stateKey.key.fill(0)),
  );
}

// After a reload: the recovery saved in this browser goes on where its trustees are (the bank's
// approval and the waiting period already running are kept).
async function doResume() {
  const saved = JSON.parse(localStorage.getItem(RECOVERY_KEY) || "null");
  if (!saved) return;
  $("resume-box").hidden = true;
  let key;
  try {
    key = await openStateKey(saved.key);
  } catch (e) {
    setStatus($("recover-status"), `The saved recovery cannot be opened in this browser: ${friendlyError(e)}`, "error");
    return;
  }
  $("recover-wallet").value = saved.walletId;
  $("cancel-box").hidden = false;
  document.body.dataset.resumed = "true";
  await runRecovery(saved.walletId, saved.key, (onEvent) =>
    client.resumeRecovery(saved.state, key, onEvent, { pollIntervalMs: 500 }).finally(() => key.fill(0)),
  );
}

async function runRecovery(walletId, wrappedKey, start) {
  resetRecoverView();
  $("recover-steps").hidden = false;
  $("recover-button").disabled = true;
  recovering = true;
  cancelling = false;
  document.body.dataset.recoverState = "running";
  step("step-passkey", "active");
  setStatus($("recover-status"), "Contacting the trustees…");
  const shareLine = new Map();
  awaitingAt = null;
  approvedAt = null;
  const started = performance.now();
  try {
    const res = await start((e) => {
      if (e.type === "checkpoint") {
        localStorage.setItem(RECOVERY_KEY, JSON.stringify({ walletId, step: e.step, state: e.state, key: wrappedKey }));
        return;
      }
      onRecoverEvent(e, shareLine);
    });
    localStorage.removeItem(RECOVERY_KEY);
    const elapsed = performance.now() - started;
    document.body.dataset.recoverMs = String(Math.round(elapsed));
    document.body.dataset.bankWaitMs = String(
      awaitingAt !== null && approvedAt !== null ? Math.round(approvedAt - awaitingAt) : 0,
    );
    step("step-verify", "done");
    step("step-done", "done");
    $("cancel-box").hidden = true;
    $("recovered-secret").textContent = new TextDecoder().decode(res.secret);
    res.secret.fill(0);
    const notes = [];
    if (res.unavailable.length) notes.push(`not used: ${res.unavailable.map((u) => `${u.trustee} (${u.reason})`).join(", ")}`);
    if (res.faulty.length) notes.push(`rejected (bad piece): ${res.faulty.map((f) => f.trustee).join(", ")}`);
    $("recover-summary").textContent =
      `Rebuilt from the verified pieces of ${res.used.join(", ")}.` + (notes.length ? ` ${notes.join("; ")}.` : "");
    $("recover-result").dataset.walletId = res.walletId;
    $("reissue-button").hidden = false;
    $("reissue-button").disabled = false;
    $("reissued-table").hidden = true;
    setStatus($("reissue-status"), "");
    $("recover-result").hidden = false;
    setStatus($("recover-status"), "Recovery complete.", "ok");
    document.body.dataset.recoverState = "done";
  } catch (e) {
    const msg = String(e && e.message ? e.message : e);
    if (/cancelled/i.test(msg)) {
      localStorage.removeItem(RECOVERY_KEY);
      document.body.dataset.recoverState = "cancelled";
      setStatus($("recover-status"), "This recovery was cancelled. No trustee will release its piece.", "ok");
    } else {
      document.body.dataset.recoverState = "failed";
      setStatus($("recover-status"), `Recovery stopped: ${friendlyError(e)}`, "error");
    }
    for (const id of ["step-passkey", "step-bank", "step-wait", "step-verify"]) {
      if ($(id).dataset.state === "active") step(id, "failed");
    }
    $("cancel-box").hidden = true;
  } finally {
    recovering = false;
    $("recover-button").disabled = false;
  }
}

function onRecoverEvent(e, shareLine) {
  switch (e.type) {
    case "sessionOpened":
      break;
    case "trusteeFailed":
      $("shares").append(el("li", { class: "error" }, `${e.trustee}: could not take part (${e.reason})`));
      break;
    case "sessionsOpened": {
      $("sessions").replaceChildren(
        ...e.sessions.map((s) =>
          el("li", { "data-trustee": s.trustee, "data-session": s.sessionId }, `${s.trustee}: ${s.sessionId}`),
        ),
      );
      $("sessions-box").hidden = false;
      $("cancel-box").hidden = false;
      break;
    }
    case "passkeyRequested":
      setStatus($("recover-status"), "Confirm with your passkey (one touch for all trustees).");
      break;
    case "ownerAuthenticated":
      step("step-passkey", "done");
      break;
    case "awaitingApproval":
      awaitingAt = performance.now();
      step("step-passkey", "done");
      step("step-bank", "active");
      $("bank-detail").replaceChildren(
        "Your bank checks that it is really you (for example by calling you) and approves. Give them this reference: ",
        el("strong", { id: "bank-reference", class: "mono" }, e.bankSessionId),
      );
      setStatus($("recover-status"), "Waiting for your bank's approval. Keep this page open.");
      document.body.dataset.recoverState = "awaiting-approval";
      break;
    case "approvalPending":
      $("wait-detail").textContent = "";
      setStatus($("recover-status"), `Your bank: ${e.status}`);
      break;
    case "approved":
      approvedAt = performance.now();
      step("step-bank", "done");
      $("bank-detail").textContent = `Approved by your bank (${e.approvers.join(", ")}).`;
      step("step-wait", "active");
      document.body.dataset.recoverState = "approved";
      setStatus($("recover-status"), "Your bank approved. The waiting period is running.");
      break;
    case "waiting":
      step("step-bank", "done");
      step("step-wait", "active");
      $("countdown").textContent = formatDuration(e.secondsLeft);
      $("wait-detail").textContent = `left, until ${new Date(e.releaseAt * 1000).toLocaleString()}.`;
      document.body.dataset.recoverState = "waiting";
      break;
    case "shareVerified":
    case "shareRejected": {
      step("step-wait", "done");
      $("countdown").textContent = "0:00";
      $("wait-detail").textContent = "over.";
      step("step-verify", "active");
      let li = shareLine.get(e.trustee);
      if (!li) {
        li = el("li", { "data-trustee": e.trustee });
        shareLine.set(e.trustee, li);
        $("shares").append(li);
      }
      if (e.type === "shareVerified") {
        li.className = "ok";
        li.textContent = `${e.trustee}: piece ${e.shareIndex} verified ✓`;
      } else {
        li.className = "error";
        li.textContent = `${e.trustee}: not used (${e.reason})`;
      }
      break;
    }
    case "released":
      step("step-verify", "done");
      break;
  }
}

async function doCancel() {
  if (!recovering || cancelling) return;
  cancelling = true;
  $("cancel-button").disabled = true;
  setStatus($("recover-status"), "Cancelling: confirm with your passkey…");
  try {
    const outcomes = await client.cancelRecovery();
    const done = outcomes.filter((o) => o.cancelled).length;
    const failed = outcomes.filter((o) => !o.cancelled);
    document.body.dataset.cancelled = String(done);
    setStatus(
      $("recover-status"),
      failed.length === 0
        ? `Recovery cancelled at all ${done} trustees. No trustee will release its piece.`
        : `Cancelled at ${done} of ${outcomes.length} trustees; not at ${failed.map((f) => `${f.trustee} (${f.error})`).join(", ")}. Call your bank.`,
      failed.length === 0 ? "ok" : "error",
    );
  } catch (e) {
    cancelling = false;
    $("cancel-button").disabled = false;
    setStatus($("recover-status"), `Cancel failed: ${friendlyError(e)}`, "error");
  }
}

// ---------------------------------------------------------------------------------------------

async function start() {
  const status = $("load-status");
  try {
    await init();
    const toml = await (await fetch("trustees.toml", { cache: "no-store" })).text();
    client = new DlockerClient(toml, passkey);
    trustees = client.trustees();
    $("version").textContent = version();
  } catch (e) {
    setStatus(status, `The wallet page could not start: ${friendlyError(e)}`, "error");
    return;
  }
  status.hidden = true;
  $("tabs").hidden = false;
  fillBackupForm();
  const last = JSON.parse(localStorage.getItem(STORAGE_KEY) || "null");
  if (last && last.walletId) $("recover-wallet").value = last.walletId;

  $("tab-backup").addEventListener("click", () => showTab("backup"));
  $("tab-recover").addEventListener("click", () => showTab("recover"));
  for (const r of document.querySelectorAll("input[name=secret-source]")) {
    r.addEventListener("change", () => {
      const paste = $("secret-paste").checked;
      $("paste-box").hidden = !paste;
      $("generated-box").hidden = paste;
    });
  }
  $("threshold").addEventListener("change", updateThresholdHint);
  $("backup-form").addEventListener("submit", doBackup);
  $("verify-button").addEventListener("click", doVerify);
  $("recover-form").addEventListener("submit", doRecover);
  $("cancel-button").addEventListener("click", doCancel);
  $("link-docs-button").addEventListener("click", doLinkDocs);
  $("refresh-docs-button").addEventListener("click", doListDocs);
  $("reissue-button").addEventListener("click", doReissue);
  $("resume-button").addEventListener("click", doResume);
  const inProgress = JSON.parse(localStorage.getItem(RECOVERY_KEY) || "null");
  if (inProgress) {
    $("resume-text").textContent =
      `A recovery of wallet ${inProgress.walletId} was in progress in this browser. Continue it: your bank's ` +
      "approval and the waiting period already running are kept.";
    $("resume-box").hidden = false;
    $("recover-wallet").value = inProgress.walletId;
  }
  showTab(inProgress || location.hash === "#recover" ? "recover" : "backup");
  document.body.dataset.ready = "true";
}

start();
