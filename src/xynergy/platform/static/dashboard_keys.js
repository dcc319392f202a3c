// The Platform Dashboard's "Keys" page: the tenant's API keys, one cursor page at a
// time, with rotation (a grace period) and revocation (confirmed first), through the
// platform's key admin API (/admin/keys, keys:admin). A file of ours, registered on
// XynergyApp.pages for dashboard.js to show and refresh like its own sections.
//
// A rotated key's new secret exists in the API's answer only: it is shown once, in a
// panel the user dismisses, and is never stored (dismissing, leaving the page or
// signing out clears it). Revoking or rotating the key the session itself stands for
// says first that the session ends with it.
(function () {
  "use strict";

  var App = window.XynergyApp;
  var $ = App.$;
  var make = App.make;
  var show = App.show;
  var secret = App.dashboard.secretPanel("keys", "keyId");
  var ApiError = App.ApiError;
  var Stale = App.Stale;
  var SCOPE = "keys:admin";
  var PAGE_SIZE = 20; // a screenful; the API caps it too
  var WHEN = new Intl.DateTimeFormat("en-GB", {
    dateStyle: "medium",
    timeStyle: "short",
    timeZone: "UTC"
  });

  var page = {
    view: null,
    cursor: "", // the cursor of the page shown ("" = the first, newest keys)
    older: null, // the API's next_cursor
    newer: [], // the cursors of the pages before this one
    keys: {}, // key id -> the key as listed, for the action panel
    action: null, // {kind: "rotate"|"revoke", key, opener}
    busy: false,
    tenant: undefined // the tenant the list is of (an admin's pick)
  };

  function when(iso) {
    return iso ? WHEN.format(new Date(iso)) + " UTC" : "–";
  }

  // The admin API is the platform's own app: at the server's root in all-in-one
  // mode (the template names its address; absent, this server does not serve it).
  function api(view) {
    var root = $("page-keys").dataset.apiRoot;
    if (root === undefined) return null;
    return {
      root: root.replace(/\/$/, ""),
      state: view.state,
      unreachable: view.api.unreachable,
      unauthorized: view.api.unauthorized
    };
  }

  async function call(view, method, path, options) {
    options = options || {};
    var target = api(view);
    var response = await App.fetchApi(target, method, path, {
      query: options.query || "",
      body: options.body,
      actAs: view.actAs()
    });
    return response.json();
  }

  function allowed(view) {
    var scopes = (view.state.viewer && view.state.viewer.scopes) || [];
    return scopes.indexOf("admin") >= 0 || scopes.indexOf(SCOPE) >= 0;
  }

  function ownKey(view, key) {
    return Boolean(view.state.session) && key.id === view.state.session.key_id;
  }

  // active, rotated (the old key of a rotation: valid until its grace ends),
  // revoked or expired; only an active key may be rotated.
  function stateOf(key) {
    var now = Date.now();
    if (key.revoked_at) return "revoked";
    if (key.expires_at && Date.parse(key.expires_at) <= now) return "expired";
    if (key.grace_until) return Date.parse(key.grace_until) <= now ? "retired" : "rotated";
    return "active";
  }

  var STATE_TEXT = {
    active: "Active",
    rotated: "Rotated",
    retired: "Retired",
    revoked: "Revoked",
    expired: "Expired"
  };

  function message(text) {
    $("keys-error").textContent = text || "";
  }

  function failed(error) {
    if (error instanceof Stale) return;
    message(error instanceof ApiError ? error.message : "Something went wrong: " + error);
  }

  // ---- the list ---------------------------------------------------------------
  function row(view, key) {
    var status = stateOf(key);
    var tr = make("tr");
    tr.dataset.keyId = key.id;
    tr.dataset.state = status;
    var name = make("td", null, key.name);
    if (ownKey(view, key)) name.appendChild(make("span", "badge own", "this session"));
    tr.appendChild(name);
    tr.appendChild(make("td", "path", key.display_prefix + "…" + key.last4));
    tr.appendChild(make("td", "scopes", key.scopes.join(", ")));
    tr.appendChild(make("td", null, when(key.created_at)));
    tr.appendChild(make("td", null, when(key.last_used_at)));
    var stateCell = make("td");
    stateCell.appendChild(make("span", "badge key-" + status, STATE_TEXT[status]));
    if (status === "rotated") stateCell.appendChild(make("span", "sub", " until " + when(key.grace_until)));
    tr.appendChild(stateCell);
    var actions = make("td", "actions");
    if (status === "active") actions.appendChild(actionButton("rotate", "Rotate", key));
    if (status !== "revoked") actions.appendChild(actionButton("revoke", "Revoke", key));
    tr.appendChild(actions);
    return tr;
  }

  function actionButton(kind, text, key) {
    var button = make("button", kind === "revoke" ? "danger" : null, text);
    button.type = "button";
    button.dataset.action = kind;
    button.dataset.keyId = key.id;
    button.setAttribute("aria-label", text + " key " + key.name + " (" + key.display_prefix + "…" + key.last4 + ")");
    return button;
  }

  function render(view, body) {
    page.keys = {};
    body.items.forEach(function (key) {
      page.keys[key.id] = key;
    });
    var list = $("keys-list");
    list.replaceChildren.apply(
      list,
      body.items.map(function (key) {
        return row(view, key);
      })
    );
    page.older = body.next_cursor;
    show($("keys-empty"), body.items.length === 0);
    show($("keys-pages"), Boolean(page.older) || page.newer.length > 0);
    $("keys-older").disabled = !page.older;
    $("keys-newer").disabled = page.newer.length === 0;
    var tenant = view.actAs() || (view.state.session && view.state.session.tenant_id) || "";
    $("keys-tenant").textContent = "Keys of tenant " + tenant + ", newest first.";
    $("page-keys").dataset.count = String(body.items.length);
  }

  async function load(view) {
    var query = "?limit=" + PAGE_SIZE + (page.cursor ? "&cursor=" + encodeURIComponent(page.cursor) : "");
    render(view, await call(view, "GET", "/admin/keys", { query: query }));
  }

  // ---- the action panel: rotate (grace period) or revoke, confirmed ---------------
  function openAction(view, kind, key, opener) {
    page.action = { kind: kind, key: key, opener: opener };
    var own = ownKey(view, key);
    var label = key.name + " (" + key.display_prefix + "…" + key.last4 + ")";
    $("keys-action-title").textContent = (kind === "rotate" ? "Rotate key " : "Revoke key ") + label;
    $("keys-action-text").textContent = kind === "rotate"
      ? "A new key with the same scopes is issued; its secret is shown once. The old key keeps " +
        "working for the grace period, then is refused."
      : "The key is refused at once, on every replica. This cannot be undone.";
    var warning = "";
    if (own && kind === "revoke") {
      warning = "This is the key this session signed in with: revoking it ends this session " +
        "(and every other one signed in with it) at once.";
    } else if (own) {
      warning = "This is the key this session signed in with: the session ends when the grace " +
        "period does (at once with 0). Sign in again with the new key.";
    }
    $("keys-action-warning").textContent = warning;
    show($("keys-action-warning"), Boolean(warning));
    show($("keys-grace-field"), kind === "rotate");
    var confirm = $("keys-action-confirm");
    confirm.textContent = kind === "rotate" ? "Rotate" : own ? "Revoke and end this session" : "Revoke";
    confirm.className = kind === "revoke" ? "danger" : "primary";
    $("keys-action").dataset.kind = kind;
    $("keys-action").dataset.keyId = key.id;
    show($("keys-action"), true);
    (kind === "rotate" ? $("keys-grace") : $("keys-action-cancel")).focus();
  }

  function closeAction(refocus) {
    var action = page.action;
    page.action = null;
    show($("keys-action"), false);
    if (refocus && action && action.opener && action.opener.isConnected) action.opener.focus();
  }

  function grace() {
    var input = $("keys-grace");
    var text = input.value.trim();
    var max = Number(input.max);
    // A number input reads "" for what is not a number: that is not the default.
    if (text === "" && !input.validity.badInput) return { ok: true, body: {} }; // the server's default
    var seconds = Number(text);
    if (input.validity.badInput || !Number.isInteger(seconds) || seconds < 0 || seconds > max) {
      return { ok: false, error: "The grace period is a whole number of seconds from 0 to " + max + "." };
    }
    return { ok: true, body: { grace_seconds: seconds } };
  }

  async function confirmAction(view) {
    var action = page.action;
    if (!action || page.busy) return;
    message("");
    var body = {};
    if (action.kind === "rotate") {
      var asked = grace();
      if (!asked.ok) {
        message(asked.error);
        $("keys-grace").focus();
        return;
      }
      body = asked.body;
    }
    page.busy = true;
    $("keys-action-confirm").disabled = true;
    try {
      var path = "/admin/keys/" + encodeURIComponent(action.key.id) + "/" + action.kind;
      var answer = await call(view, "POST", path, { body: action.kind === "rotate" ? body : undefined });
      closeAction(false);
      if (action.kind === "rotate") showSecret(answer, action.key);
      $("keys-status").textContent = action.kind === "rotate"
        ? "Key " + action.key.name + " rotated."
        : "Key " + action.key.name + " revoked.";
      // The session's own key revoked: the next call answers 401 and the page signs out.
      await load(view);
      if (action.kind === "revoke") $("keys-title").focus();
    } catch (error) {
      failed(error);
    } finally {
      page.busy = false;
      $("keys-action-confirm").disabled = false;
    }
  }

  // ---- the new secret: shown once, never stored ---------------------------------------
  function showSecret(created, old) {
    $("keys-secret-old").textContent = "The old key, " + old.display_prefix + "…" + old.last4 +
      ", keeps working for the grace period, then is refused.";
    secret.show(
      created.key.name + " (" + created.key.display_prefix + "…" + created.key.last4 + ")",
      created.secret,
      created.key.id
    );
  }

  // ---- what dashboard.js calls -----------------------------------------------------------
  async function refresh(view, context) {
    page.view = view;
    var target = api(view);
    var can = allowed(view);
    show($("keys-scope"), !can);
    show($("keys-unserved"), can && !target);
    show($("keys-body"), can && Boolean(target));
    if (!can || !target) return [];
    // Keys change by hand, not by the minute: read at a page's opening, a range or
    // tenant change, "Refresh now" and after each action, not at every tick (the
    // admin API has its own, smaller, rate class).
    if (!context.full && $("page-keys").dataset.count !== undefined) return [];
    if (context.full && page.tenant !== view.actAs()) {
      page.tenant = view.actAs();
      page.cursor = "";
      page.newer = [];
      closeAction(false);
    }
    return [load(view)];
  }

  function reset() {
    secret.clear();
    closeAction(false);
    page.cursor = "";
    page.newer = [];
    page.keys = {};
    page.tenant = undefined;
    $("keys-list").replaceChildren();
    $("keys-status").textContent = "";
    message("");
    delete $("page-keys").dataset.count;
  }

  function start() {
    $("keys-list").addEventListener("click", function (event) {
      var button = event.target.closest("button[data-action]");
      if (!button || !page.view) return;
      var key = page.keys[button.dataset.keyId];
      if (key) openAction(page.view, button.dataset.action, key, button);
    });
    $("keys-action").addEventListener("submit", function (event) {
      event.preventDefault();
      confirmAction(page.view).catch(failed);
    });
    $("keys-action-cancel").addEventListener("click", function () {
      closeAction(true);
    });
    $("keys-action").addEventListener("keydown", function (event) {
      if (event.key === "Escape") closeAction(true);
    });
    $("keys-secret-copy").addEventListener("click", function () {
      secret.copy().catch(failed);
    });
    $("keys-secret-dismiss").addEventListener("click", function () {
      secret.clear();
      $("keys-title").focus();
    });
    $("keys-older").addEventListener("click", function () {
      if (!page.older || !page.view) return;
      page.newer.push(page.cursor);
      page.cursor = page.older;
      load(page.view).catch(failed);
    });
    $("keys-newer").addEventListener("click", function () {
      if (!page.newer.length || !page.view) return;
      page.cursor = page.newer.pop();
      load(page.view).catch(failed);
    });
    // Leaving the page takes the secret off the screen.
    window.addEventListener("hashchange", function () {
      if (window.location.hash !== "#keys") secret.clear();
    });
  }

  App.pages = App.pages || {};
  App.pages.keys = { refresh: refresh, reset: reset };
  document.addEventListener("DOMContentLoaded", start);
})();
