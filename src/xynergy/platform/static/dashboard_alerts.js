// The Platform Dashboard's "Alerts" page: the tenant's rules with their state, a form
// to create and edit them (metrics:read plus alerts:write), deletion confirmed first,
// and the history. A file of ours, registered on XynergyApp.pages for dashboard.js to
// show and refresh like its own sections.
//
// A webhook secret exists in the API's answer only (a new rule with a URL, a first URL,
// a rotation): it is shown once, in a panel the user dismisses, and never stored. The
// server refuses what the session may not do; the page only hides what would fail.
(function () {
  "use strict";

  var App = window.XynergyApp;
  var $ = App.$;
  var make = App.make;
  var show = App.show;
  var secret = App.dashboard.secretPanel("alerts", "ruleId");
  var ApiError = App.ApiError;
  var Stale = App.Stale;
  var WRITE_SCOPES = ["metrics:read", "alerts:write"];
  var RULES_MAX = 200; // the API's page cap; a tenant holds at most 100 by default
  var EVENTS_SHOWN = 50;
  var PLATFORM_KINDS = {
    error_rate: true,
    latency_p99: true,
    cache_hit_rate: true,
    breaker_open: true,
    memory: true,
    file_descriptors: true,
    disk: true
  };
  var UNITS = {
    spend: "USD in the period (default 3,000 a month).",
    budget_percent: "Percent of the tenant's month AI budget (default 80).",
    error_rate: "Percent of requests answered 5xx (default 5).",
    latency_p99: "Milliseconds (default 1,000).",
    cache_hit_rate: "Percent: fires under it (default 85).",
    breaker_open: "Not used: fires while the breaker is open.",
    memory: "Percent of the machine's memory (default 85).",
    file_descriptors: "Percent of the open-file limit (default 85).",
    disk: "Percent of the data directory's disk (default 85)."
  };
  var NUMBER = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });
  var WHEN = new Intl.DateTimeFormat("en-GB", { dateStyle: "medium", timeStyle: "short", timeZone: "UTC" });

  var page = {
    view: null,
    rules: {}, // rule id -> the rule as listed
    editing: null, // the rule the form edits; null: a new one
    deleting: null,
    opener: null, // the button that opened the form or the delete panel
    busy: false,
    tenant: undefined // the tenant picked when the list was read
  };

  function when(iso) {
    return iso ? WHEN.format(new Date(iso)) + " UTC" : "–";
  }

  function value(number) {
    return number === null || number === undefined ? "–" : NUMBER.format(number);
  }

  // ---- who may do what ------------------------------------------------------------
  function scopes(view) {
    return (view.state.viewer && view.state.viewer.scopes) || [];
  }

  function mayWrite(view) {
    var held = scopes(view);
    return held.indexOf("admin") >= 0 || WRITE_SCOPES.every(function (scope) {
      return held.indexOf(scope) >= 0;
    });
  }

  function isOperator(view) {
    return Boolean(view.state.viewer && view.state.viewer.operator);
  }

  // A metrics:read operator key (not admin) names the picked tenant in ?tenant= and
  // reads its rules; its writes would act for its own tenant, so the list is read only.
  function pickedByName(view) {
    var viewer = view.state.viewer;
    return Boolean(viewer && viewer.operator && !viewer.admin && $("tenant").value);
  }

  function editable(view) {
    return mayWrite(view) && !pickedByName(view);
  }

  async function call(view, method, path, options) {
    options = options || {};
    var response = await App.fetchApi(view.api, method, path, {
      query: options.query || "",
      body: options.body,
      actAs: view.actAs()
    });
    return response.status === 204 ? null : response.json();
  }

  function listQuery(view, limit) {
    var query = "?limit=" + limit;
    if (pickedByName(view)) query += "&tenant=" + encodeURIComponent($("tenant").value);
    return query;
  }

  function failed(error) {
    if (error instanceof Stale) return;
    $("alerts-error").textContent = error instanceof ApiError ? error.message : "Something went wrong: " + error;
  }

  // ---- the lists -------------------------------------------------------------------
  function actionButton(kind, text, rule) {
    var button = make("button", kind === "delete" ? "danger" : null, text);
    button.type = "button";
    button.dataset.action = kind;
    button.dataset.ruleId = rule.id;
    button.setAttribute("aria-label", text + " alert rule " + rule.name);
    return button;
  }

  function ruleRow(view, rule) {
    var row = make("tr");
    row.dataset.ruleId = rule.id;
    row.dataset.state = rule.enabled ? rule.state : "disabled";
    row.appendChild(make("td", null, rule.name + (rule.platform_wide ? " (platform)" : "")));
    row.appendChild(make("td", null, rule.kind + (rule.period ? " / " + rule.period : "") +
      (rule.target ? " · " + rule.target : "")));
    row.appendChild(make("td", "num", value(rule.threshold)));
    var stateCell = make("td");
    var shown = !rule.enabled ? "disabled" : rule.state;
    stateCell.appendChild(make("span", "badge " + shown, shown));
    row.appendChild(stateCell);
    row.appendChild(make("td", "num", value(rule.last_value)));
    row.appendChild(make("td", null, when(rule.state_since)));
    var actions = make("td", "actions");
    var mine = !rule.platform_wide || isOperator(view);
    if (editable(view) && mine) {
      actions.appendChild(actionButton("edit", "Edit", rule));
      if (rule.webhook_url) actions.appendChild(actionButton("rotate", "New secret", rule));
      actions.appendChild(actionButton("delete", "Delete", rule));
    }
    row.appendChild(actions);
    return row;
  }

  // Redrawn every slow tick: the focused row button gets its focus back.
  function focusedAction() {
    var active = document.activeElement;
    if (!active || !active.dataset || !active.dataset.action || !$("alert-rules").contains(active)) return null;
    return { action: active.dataset.action, rule: active.dataset.ruleId };
  }

  function renderRules(view, body) {
    var focused = focusedAction();
    page.rules = {};
    body.items.forEach(function (rule) {
      page.rules[rule.id] = rule;
    });
    var list = $("alert-rules");
    list.replaceChildren.apply(list, body.items.map(function (rule) {
      return ruleRow(view, rule);
    }));
    show($("alert-rules-empty"), body.items.length === 0);
    $("page-alerts").dataset.count = String(body.items.length);
    if (focused) {
      var again = list.querySelector(
        'button[data-action="' + focused.action + '"][data-rule-id="' + focused.rule + '"]'
      );
      if (again) again.focus();
    }
  }

  function renderEvents(body) {
    var list = $("alert-events");
    list.replaceChildren.apply(list, body.items.map(function (event) {
      var row = make("tr");
      row.appendChild(make("td", null, when(event.created_at)));
      var rule = page.rules[event.rule_id];
      row.appendChild(make("td", null, rule ? rule.name : event.rule_id));
      var cell = make("td");
      cell.appendChild(make("span", "badge " + event.state, event.state));
      row.appendChild(cell);
      row.appendChild(make("td", "num", value(event.value)));
      row.appendChild(make("td", "num", value(event.threshold)));
      return row;
    }));
    show($("alert-events-empty"), body.items.length === 0);
  }

  async function load(view) {
    renderRules(view, await call(view, "GET", "/api/alerts", { query: listQuery(view, RULES_MAX) }));
    renderEvents(await call(view, "GET", "/api/alerts/events", { query: listQuery(view, EVENTS_SHOWN) }));
    $("alerts-error").textContent = "";
  }

  // ---- the form: create or edit ------------------------------------------------------
  function fitKind(view) {
    var kind = $("alert-kind").value;
    var platformKind = Boolean(PLATFORM_KINDS[kind]);
    $("alert-threshold-hint").textContent = UNITS[kind] || "";
    $("alert-period").disabled = kind !== "spend";
    if (kind !== "spend") $("alert-period").value = "";
    else if (!$("alert-period").value) $("alert-period").value = "month";
    $("alert-target").disabled = kind === "budget_percent";
    var platform = $("alert-platform");
    show($("alert-platform-field"), isOperator(view) && kind !== "budget_percent");
    if (platformKind) platform.checked = true;
    if (kind === "budget_percent") platform.checked = false;
    platform.disabled = platformKind || page.editing !== null;
  }

  function openForm(view, rule, opener) {
    closeDelete(false);
    page.editing = rule;
    page.opener = opener || null;
    $("alerts-form-error").textContent = "";
    $("alerts-form-title").textContent = rule ? "Edit alert rule " + rule.name : "New alert rule";
    $("alerts-save").textContent = rule ? "Save" : "Create";
    Array.prototype.forEach.call($("alert-kind").options, function (option) {
      var hide = option.dataset.platform === "true" && !isOperator(view);
      option.hidden = hide;
      option.disabled = hide;
    });
    $("alert-name").value = rule ? rule.name : "";
    $("alert-kind").value = rule ? rule.kind : "spend";
    $("alert-kind").disabled = Boolean(rule);
    $("alert-threshold").value = rule ? String(rule.threshold) : "";
    $("alert-period").value = rule ? rule.period || "" : "";
    $("alert-window").value = rule ? String(rule.window_minutes) : "5";
    $("alert-target").value = rule ? rule.target || "" : "";
    $("alert-webhook").value = rule ? rule.webhook_url || "" : "";
    $("alert-enabled").checked = rule ? rule.enabled : true;
    $("alert-platform").checked = rule ? rule.platform_wide : false;
    fitKind(view);
    show($("alerts-form"), true);
    $("alert-name").focus();
  }

  function closeForm(refocus) {
    var opener = page.opener;
    page.editing = null;
    page.opener = null;
    show($("alerts-form"), false);
    if (refocus && opener && opener.isConnected) opener.focus();
  }

  // The form's fields as the API takes them; {error} for what is not a number.
  function formBody() {
    var threshold = $("alert-threshold");
    var windowInput = $("alert-window");
    if (threshold.validity.badInput || (threshold.value !== "" && !(Number(threshold.value) >= 0))) {
      return { error: "The threshold is a number from 0 up.", field: threshold };
    }
    var minutes = Number(windowInput.value);
    if (windowInput.validity.badInput || !Number.isInteger(minutes) || minutes < 1) {
      return { error: "The window is a whole number of minutes from 1 up.", field: windowInput };
    }
    var body = {
      name: $("alert-name").value.trim(),
      kind: $("alert-kind").value,
      period: $("alert-period").value || null,
      window_minutes: minutes,
      target: $("alert-target").disabled ? null : $("alert-target").value.trim() || null,
      webhook_url: $("alert-webhook").value.trim() || null,
      enabled: $("alert-enabled").checked,
      platform_wide: $("alert-platform").checked && isOperator(page.view)
    };
    if (threshold.value !== "") body.threshold = Number(threshold.value);
    return { body: body };
  }

  // An edit sends what changed only (the kind and platform_wide never change).
  function changes(rule, body) {
    var patch = {};
    ["name", "threshold", "period", "window_minutes", "target", "webhook_url", "enabled"].forEach(function (name) {
      if (name in body && body[name] !== rule[name]) patch[name] = body[name];
    });
    return patch;
  }

  async function save(view) {
    if (page.busy) return;
    var asked = formBody();
    if (asked.error) {
      $("alerts-form-error").textContent = asked.error;
      asked.field.focus();
      return;
    }
    $("alerts-form-error").textContent = "";
    page.busy = true;
    $("alerts-save").disabled = true;
    try {
      var rule = page.editing;
      var answer = rule
        ? await call(view, "PATCH", "/api/alerts/" + encodeURIComponent(rule.id), { body: changes(rule, asked.body) })
        : await call(view, "POST", "/api/alerts", { body: asked.body });
      closeForm(false);
      if (answer.webhook_secret) showSecret(answer);
      $("alerts-status").textContent = "Alert rule " + answer.name + (rule ? " saved." : " created.");
      await load(view);
      if (!answer.webhook_secret) $("alerts-title").focus();
    } catch (error) {
      // The API's 4xx detail, next to the form it is about.
      if (error instanceof Stale) return;
      $("alerts-form-error").textContent = error instanceof ApiError ? error.message : String(error);
    } finally {
      page.busy = false;
      $("alerts-save").disabled = false;
    }
  }

  // ---- delete (confirmed) and a new webhook secret ------------------------------------------
  function openDelete(rule, opener) {
    closeForm(false);
    page.deleting = rule;
    page.opener = opener;
    $("alerts-delete-title").textContent = "Delete alert rule " + rule.name + "?";
    $("alerts-delete-error").textContent = "";
    show($("alerts-delete"), true);
    $("alerts-delete-cancel").focus();
  }

  function closeDelete(refocus) {
    var opener = page.opener;
    page.deleting = null;
    show($("alerts-delete"), false);
    if (refocus && opener && opener.isConnected) opener.focus();
  }

  async function confirmDelete(view) {
    var rule = page.deleting;
    if (!rule || page.busy) return;
    page.busy = true;
    try {
      await call(view, "DELETE", "/api/alerts/" + encodeURIComponent(rule.id));
      closeDelete(false);
      $("alerts-status").textContent = "Alert rule " + rule.name + " deleted.";
      await load(view);
      $("alerts-title").focus();
    } catch (error) {
      if (error instanceof Stale) return;
      $("alerts-delete-error").textContent = error instanceof ApiError ? error.message : String(error);
    } finally {
      page.busy = false;
    }
  }

  async function rotate(view, rule) {
    var answer = await call(view, "PATCH", "/api/alerts/" + encodeURIComponent(rule.id), {
      body: { rotate_webhook_secret: true }
    });
    showSecret(answer);
    $("alerts-status").textContent = "A new webhook secret for " + rule.name + ".";
  }

  function showSecret(rule) {
    secret.show(rule.name, rule.webhook_secret, rule.id);
  }

  // ---- what dashboard.js calls -----------------------------------------------------------
  async function refresh(view, context) {
    page.view = view;
    var writer = mayWrite(view);
    show($("alerts-scope"), !writer);
    show($("alerts-readonly"), writer && pickedByName(view));
    show($("alerts-new-bar"), editable(view));
    var tenant = $("tenant").value;
    if (!editable(view) || (page.tenant !== undefined && page.tenant !== tenant)) {
      // Another tenant picked: an open form was about a rule of the one before.
      closeForm(false);
      closeDelete(false);
    }
    page.tenant = tenant;
    // Rules move at most once a minute (the evaluation): every other tick is enough.
    if (!context.full && !context.slow && $("page-alerts").dataset.count !== undefined) return [];
    return [load(view)];
  }

  function reset() {
    secret.clear();
    closeForm(false);
    closeDelete(false);
    page.rules = {};
    page.tenant = undefined;
    $("alert-rules").replaceChildren();
    $("alert-events").replaceChildren();
    $("alerts-status").textContent = "";
    $("alerts-error").textContent = "";
    delete $("page-alerts").dataset.count;
  }

  function start() {
    $("alerts-new").addEventListener("click", function (event) {
      if (page.view) openForm(page.view, null, event.currentTarget);
    });
    $("alert-kind").addEventListener("change", function () {
      if (page.view) fitKind(page.view);
    });
    $("alerts-form").addEventListener("submit", function (event) {
      event.preventDefault();
      if (page.view) save(page.view).catch(failed);
    });
    $("alerts-cancel").addEventListener("click", function () {
      closeForm(true);
    });
    $("alerts-form").addEventListener("keydown", function (event) {
      if (event.key === "Escape") closeForm(true);
    });
    $("alerts-delete").addEventListener("submit", function (event) {
      event.preventDefault();
      if (page.view) confirmDelete(page.view).catch(failed);
    });
    $("alerts-delete-cancel").addEventListener("click", function () {
      closeDelete(true);
    });
    $("alerts-delete").addEventListener("keydown", function (event) {
      if (event.key === "Escape") closeDelete(true);
    });
    $("alert-rules").addEventListener("click", function (event) {
      var button = event.target.closest("button[data-action]");
      var rule = button && page.rules[button.dataset.ruleId];
      if (!rule || !page.view) return;
      if (button.dataset.action === "edit") openForm(page.view, rule, button);
      else if (button.dataset.action === "delete") openDelete(rule, button);
      else if (button.dataset.action === "rotate") rotate(page.view, rule).catch(failed);
    });
    $("alerts-secret-copy").addEventListener("click", function () {
      secret.copy().catch(failed);
    });
    $("alerts-secret-dismiss").addEventListener("click", function () {
      secret.clear();
      $("alerts-title").focus();
    });
    // Leaving the page takes the secret off the screen.
    window.addEventListener("hashchange", function () {
      if (window.location.hash !== "#alerts") secret.clear();
    });
  }

  App.pages = App.pages || {};
  App.pages.alerts = { refresh: refresh, reset: reset };
  document.addEventListener("DOMContentLoaded", start);
})();
