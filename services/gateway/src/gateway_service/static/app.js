// hopshop demo UI: a public OAuth client (authorization code + PKCE S256).
// Tokens stay in this module's memory, never in localStorage: a script injected
// later cannot read them from storage, and a reload simply signs out. Only the
// PKCE verifier and state survive the trip to the login page, in sessionStorage,
// and they are deleted as soon as the code is redeemed.
"use strict";

let config = null;
let tokens = null; // {access_token, refresh_token}

const $ = (id) => document.getElementById(id);
const say = (text) => { $("message").textContent = text || ""; };
const money = (cents, currency) => `${(cents / 100).toFixed(2)} ${currency}`;

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString() {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

async function login() {
  const verifier = randomString();
  const state = randomString();
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  sessionStorage.setItem("pkce", JSON.stringify({ verifier, state }));
  const url = new URL(config.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: "code", client_id: config.client_id, redirect_uri: config.redirect_uri,
    scope: config.scope, state, code_challenge: challenge, code_challenge_method: "S256",
  }).toString();
  location.assign(url.toString());
}

async function redeem(params) {
  const saved = JSON.parse(sessionStorage.getItem("pkce") || "null");
  sessionStorage.removeItem("pkce");
  history.replaceState(null, "", "/"); // the code must not linger in the address bar
  if (params.get("error")) throw new Error(`login refused: ${params.get("error")}`);
  if (!saved || params.get("state") !== saved.state) throw new Error("login state mismatch: try again");
  const response = await fetch(config.token_endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code", code: params.get("code"),
      redirect_uri: config.redirect_uri, client_id: config.client_id, code_verifier: saved.verifier,
    }),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(`login failed: ${body.error || response.status}`);
  tokens = { access_token: body.access_token, refresh_token: body.refresh_token };
}

async function logout() {
  if (tokens && tokens.refresh_token && config.revocation_endpoint) {
    // Ends the session at the issuer: services refuse its tokens from now on.
    await fetch(config.revocation_endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: tokens.refresh_token, client_id: config.client_id }),
    }).catch(() => {});
  }
  tokens = null;
  render();
}

async function api(method, path, body, extraHeaders) {
  const headers = { Accept: "application/json", ...extraHeaders };
  if (tokens) headers.Authorization = `Bearer ${tokens.access_token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(config.api + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const why = data && (data.detail || data.title) || response.statusText;
    const error = new Error(`${method} ${path}: ${response.status} ${why}`);
    error.status = response.status;
    error.type = data && data.type;
    throw error;
  }
  return data;
}

function row(cells, action) {
  const tr = document.createElement("tr");
  for (const text of cells) {
    const td = document.createElement("td");
    td.textContent = text; // textContent, never innerHTML: data is not markup
    tr.append(td);
  }
  const td = document.createElement("td");
  if (action) td.append(action);
  tr.append(td);
  return tr;
}

function button(label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  // Disabled until the click has its answer: a double click is one action, not two.
  b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      await onClick();
    } catch (e) {
      say(e.message);
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

// A scarce product says how many units one customer's unpaid orders may hold: a
// cap on what is held before payment, not on what one may buy.
function available(p) {
  const cap = p.max_held_per_customer;
  return cap == null ? String(p.available) : `${p.available} (${cap} unpaid per customer)`;
}

async function loadProducts() {
  const products = await api("GET", "/products");
  $("products").tBodies[0].replaceChildren(...products.map((p) => row(
    [p.sku, p.name, money(p.price_cents, p.currency), available(p)],
    tokens ? button("Buy one", () => placeOrder(p.id)) : null,
  )));
}

// One Idempotency-Key per checkout click, the same for that click's retries
// (draft-ietf-httpapi-idempotency-key-header): a retry after a timeout gets the
// order the first attempt placed, never a second one. randomUUID needs a secure
// context (https or loopback); elsewhere 128 random bits in hex do as well.
function idempotencyKey() {
  const id = crypto.randomUUID ? crypto.randomUUID()
    : Array.from(crypto.getRandomValues(new Uint8Array(16)),
      (b) => b.toString(16).padStart(2, "0")).join("");
  return `"${id}"`; // an sf-string
}

// Worth repeating with the same key: no answer at all, the gateway's 502/503/504,
// or the first attempt still placing the order (409 idempotency-key-in-flight).
function retryable(error) {
  return error.status === undefined || [502, 503, 504].includes(error.status)
    || (error.status === 409 && String(error.type).endsWith("/idempotency-key-in-flight"));
}

// A click whose attempts all went unanswered leaves its key here: the next click for
// the same product and card repeats that request (and gets its order, if it was placed)
// instead of placing another.
const unsettled = new Map();

async function placeOrder(productId) {
  const card = $("card").value.trim();
  const body = { items: [{ product_id: productId, quantity: 1 }], card };
  const checkout = `${productId} ${card}`;
  const key = unsettled.get(checkout) || idempotencyKey();
  unsettled.set(checkout, key);
  const headers = { "Idempotency-Key": key };
  for (let attempt = 1; ; attempt += 1) {
    try {
      const order = await api("POST", "/orders", body, headers);
      unsettled.delete(checkout);
      say(`order ${order.id}: ${order.status}`);
      break;
    } catch (e) {
      if (!retryable(e)) {
        unsettled.delete(checkout); // a definite answer: this request is settled
        throw e;
      }
      if (attempt >= 3) throw new Error(`${e.message}; click again to repeat the same order`);
      say(`${e.message}; trying again`);
      await new Promise((resolve) => setTimeout(resolve, 1000 * attempt));
    }
  }
  await refresh();
}

async function loadAccount() {
  const [orders, invoices, notifications] = await Promise.all([
    api("GET", "/orders"), api("GET", "/invoices").catch((e) => (say(e.message), [])),
    api("GET", "/notifications").catch((e) => (say(e.message), [])),
  ]);
  $("orders").tBodies[0].replaceChildren(...orders.map((o) => row(
    [String(o.id), o.status + (o.reason ? ` (${o.reason})` : ""), money(o.total_cents, o.currency), o.created_at],
    o.status === "PENDING_PAYMENT" ? button("Cancel", () => cancel(o.id)) : null,
  )));
  $("invoices").tBodies[0].replaceChildren(...invoices.map((i) => {
    const tr = row([String(i.id), String(i.order_id), i.status, money(i.amount_cents, i.currency)]);
    tr.lastChild.remove();
    return tr;
  }));
  $("notifications").replaceChildren(...notifications.map((n) => {
    const li = document.createElement("li");
    li.textContent = `${n.created_at} ${n.broadcast ? "[broadcast] " : ""}${n.message}`;
    return li;
  }));
}

async function cancel(orderId) {
  await api("POST", `/orders/${encodeURIComponent(orderId)}/cancel`);
  await refresh();
}

function claims() {
  // Display only: the gateway verifies the token, the page just shows who it names.
  const payload = tokens.access_token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(atob(payload));
}

async function refresh() {
  await loadProducts();
  if (tokens) await loadAccount();
}

function render() {
  const signedIn = tokens !== null;
  $("who").textContent = signedIn ? `signed in as ${claims().sub} (${claims().scope})` : "not signed in";
  $("login").hidden = signedIn;
  $("logout").hidden = !signedIn;
  for (const el of document.querySelectorAll(".signed-in")) el.hidden = !signedIn;
  refresh().catch((e) => say(e.message));
}

async function main() {
  config = await (await fetch("/config.json")).json();
  $("login").addEventListener("click", () => login().catch((e) => say(e.message)));
  $("logout").addEventListener("click", () => logout().catch((e) => say(e.message)));
  $("refresh").addEventListener("click", () => refresh().catch((e) => say(e.message)));
  if (location.pathname === "/callback") {
    try { await redeem(new URLSearchParams(location.search)); } catch (e) { say(e.message); }
  }
  render();
}

main().catch((e) => say(e.message));
