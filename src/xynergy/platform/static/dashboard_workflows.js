// The Platform Dashboard's Workflows page: the session tenant's runs by status,
// the runtime's queue depth, recent runs one cursor page at a time, and a run's
// steps with live progress, with Approve and Reject on a step waiting for a
// person. Loaded after dashboard.js, which shows the page and calls its refresh
// through XynergyApp.pages.
//
// The runs come from the System Runtime mounted beside the dashboard (all-in-one
// mode): the same origin, so the session cookie (Path=/) authenticates its calls;
// the decisions are POSTs, sent with the session's CSRF header by app.js's
// fetchApi. Its APIs act for the session key's tenant and need workflows:read
// (a decision: workflows:write); without it the page says so and calls nothing.
// "Runs by status" are the runtime's exact counts (GET /api/workflow-counts, one
// grouped COUNT), read at the dashboard's slow refreshes since it is polled.
//
// Live progress is the runtime's Server-Sent Events stream
// (GET {runtime}/api/workflows/{id}/events): an EventSource sends the cookie to
// its own origin, which connect-src 'self' allows. The stream starts with a
// snapshot, then tells each step's changes and ends with run.finished; the page
// closes it then (else EventSource would reconnect), when another run is picked,
// on leaving the page and on signing out.
(function () {
  "use strict";

  var App = window.XynergyApp;
  var $ = App.$;
  var make = App.make;
  var show = App.show;
  var Stale = App.Stale;

  var SCOPE = "workflows:read";
  var DECIDE_SCOPE = "workflows:write"; // what the runtime's signal endpoint requires
  var PAGE_SIZE = 20; // runs per "load more"
  var LOADED_MAX = 500; // runs kept in the list; past it, "load more" stops
  var REFRESH_MAX = 100; // runs read again at a refresh (the default page_size_max)
  var EVENTS_KEPT = 20; // lines of the run's event log, the newest
  var ENDED = { succeeded: true, failed: true, cancelled: true, deleted: true };
  var STEP_STATUS = {
    "step.started": "running",
    "step.waiting": "waiting",
    "step.succeeded": "succeeded",
    "step.failed": "failed"
  };
  var STATUSES = ["queued", "running", "waiting", "succeeded", "failed", "cancelled"];
  var FIGURES = ["wf-total", "wf-running", "wf-waiting", "wf-succeeded", "wf-failed", "wf-queued"];

  var INTEGER = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  var DECIMAL = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });
  var WHEN = new Intl.DateTimeFormat("en-GB", {
    dateStyle: "medium",
    timeStyle: "medium",
    timeZone: "UTC"
  });
  var TIME = new Intl.DateTimeFormat("en-GB", {
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    timeZone: "UTC"
  });

  var page = {
    api: null, // the dashboard's api object with the runtime's root (set at first refresh)
    runs: [], // loaded runs, newest first
    cursor: null,
    // The run whose steps are shown: {id, status, steps: {id: view}, decided: {id: true}}
    // (decided: approval steps this page sent a decision for, until they leave "waiting").
    selected: null,
    stream: null,
    streamGeneration: 0 // one more per stream opened or closed: late events are dropped
  };

  // ---- helpers ----------------------------------------------------------------
  function count(value) {
    return value === null || value === undefined ? "–" : INTEGER.format(value);
  }

  function when(iso) {
    return iso ? WHEN.format(new Date(iso)) + " UTC" : "–";
  }

  function seconds(value) {
    if (value === null || value === undefined) return "–";
    if (value < 1) return DECIMAL.format(value * 1000) + " ms";
    if (value < 120) return DECIMAL.format(value) + " s";
    return DECIMAL.format(value / 60) + " min";
  }

  function figure(id, value) {
    var element = $(id);
    element.textContent = count(value);
    element.dataset.value = value === null || value === undefined ? "" : String(value);
  }

  function cell(row, text, className) {
    var element = make("td", className, text);
    row.appendChild(element);
    return element;
  }

  function badge(status) {
    return make("span", "badge wf-" + status, status);
  }

  function root() {
    return $("page-workflows").dataset.runtimeRoot || "";
  }

  function served() {
    return $("page-workflows").dataset.runtimeServed === "true";
  }

  async function runtime(path, params) {
    var response = await App.fetchApi(page.api, "GET", path, { query: App.query(params) });
    return response.json();
  }

  function holds(viewer, scope) {
    var scopes = (viewer && viewer.scopes) || [];
    return scopes.indexOf(scope) >= 0 || scopes.indexOf("admin") >= 0;
  }

  function note(text) {
    $("wf-note").textContent = text || "";
    show($("wf-note"), Boolean(text));
    show($("wf-body"), !text);
  }

  // ---- runs by status and the queues --------------------------------------------
  // The session tenant's, like the list below (the runtime's default tenant).
  async function refreshCounts(win) {
    var counts = await runtime("/api/workflow-counts", {
      since: new Date(win.from * 1000).toISOString()
    });
    figure("wf-total", counts.total);
    $("wf-counted").textContent = "every run started in the range, counted exactly";
    figure("wf-running", counts.running);
    figure("wf-waiting", counts.waiting);
    figure("wf-succeeded", counts.succeeded);
    figure("wf-failed", counts.failed);
    $("wf-other").textContent = count(counts.cancelled) + " cancelled";
    $("wf-queued-runs").textContent = count(counts.queued) + " queued";
    STATUSES.forEach(function (status) {
      $("wf-total").dataset[status] = String(counts[status]);
    });
  }

  function renderQueues(status) {
    var queues = status.queues;
    var body = $("wf-queues");
    var queued = 0;
    var oldest = null;
    body.replaceChildren.apply(
      body,
      queues.queues.map(function (queue) {
        queued += queue.queued;
        if (queue.queued && (oldest === null || queue.oldest_queued_age_seconds > oldest)) {
          oldest = queue.oldest_queued_age_seconds;
        }
        var row = make("tr");
        row.dataset.queue = queue.name;
        cell(row, queue.name);
        cell(row, count(queue.queued), "num");
        cell(row, count(queue.running), "num");
        cell(row, count(queue.waiting), "num");
        cell(row, queue.queued ? seconds(queue.oldest_queued_age_seconds) : "–", "num");
        return row;
      })
    );
    var known = queues.status === "up";
    figure("wf-queued", known ? queued : null);
    $("wf-queue-age").textContent = !known
      ? queues.status === "not_deployed"
        ? "no runtime on this server"
        : "runtime unreachable"
      : oldest === null
        ? "nothing waiting to start"
        : "oldest waited " + seconds(oldest);
    $("wf-queues-note").textContent =
      (queues.error ? queues.error + " " : "") +
      "Every tenant's runs, as the runtime last counted them (the status answer is " +
      DECIMAL.format(status.age_seconds) + " s old).";
  }

  // ---- recent runs ------------------------------------------------------------------
  function runRow(run) {
    var row = make("tr");
    row.dataset.run = run.id;
    row.dataset.status = run.status;
    var first = make("td");
    var open = make("button", "link-button", run.id.slice(0, 8));
    open.type = "button";
    open.dataset.run = run.id;
    open.setAttribute("aria-label", "Watch run " + run.id + " (" + run.definition_name + ")");
    if (page.selected && page.selected.id === run.id) open.setAttribute("aria-pressed", "true");
    first.appendChild(open);
    row.appendChild(first);
    cell(row, run.definition_name + (run.built_in ? "" : " v" + run.definition_version));
    var status = make("td");
    status.appendChild(badge(run.status));
    row.appendChild(status);
    cell(row, when(run.created_at));
    cell(row, when(run.finished_at));
    return row;
  }

  function renderRuns() {
    var body = $("wf-runs");
    body.replaceChildren.apply(body, page.runs.map(runRow));
    show($("wf-runs-empty"), page.runs.length === 0);
    show($("wf-more"), Boolean(page.cursor) && page.runs.length < LOADED_MAX);
  }

  // The newest page again, as long as what was loaded (so "load more" is kept).
  async function refreshRuns() {
    var wanted = Math.min(Math.max(page.runs.length, PAGE_SIZE), REFRESH_MAX);
    var body = await runtime("/api/workflows", { limit: wanted });
    // "Load more" added runs meanwhile: this page is too short; the next refresh reads them all.
    if (page.runs.length > wanted) return;
    page.runs = body.items;
    page.cursor = body.next_cursor;
    renderRuns();
  }

  async function loadMore() {
    if (!page.cursor) return;
    $("wf-more").disabled = true;
    try {
      var body = await runtime("/api/workflows", { limit: PAGE_SIZE, cursor: page.cursor });
      var seen = {};
      page.runs.forEach(function (run) {
        seen[run.id] = true;
      });
      body.items.forEach(function (run) {
        if (!seen[run.id] && page.runs.length < LOADED_MAX) page.runs.push(run);
      });
      page.cursor = body.next_cursor;
      renderRuns();
    } catch (error) {
      if (!(error instanceof Stale)) $("wf-run-error").textContent = error.message;
    } finally {
      $("wf-more").disabled = false;
    }
  }

  // ---- one run's steps, live ----------------------------------------------------------
  function stepRow(step) {
    var row = make("tr");
    row.dataset.step = step.id;
    row.dataset.status = step.status;
    cell(row, step.id);
    cell(row, step.operation || step.kind);
    cell(row, step.depends_on.length ? step.depends_on.join(", ") : "–");
    var status = make("td");
    status.appendChild(badge(step.status));
    row.appendChild(status);
    cell(row, count(step.attempts), "num");
    cell(row, step.duration_ms === null ? "–" : seconds(step.duration_ms / 1000), "num");
    cell(row, step.error_code ? step.error_code + (step.error ? ": " + step.error : "") : "");
    return row;
  }

  function renderRun(run) {
    var selected = page.selected;
    selected.status = run.status;
    selected.steps = {};
    run.steps.forEach(function (step) {
      selected.steps[step.id] = step;
    });
    $("wf-run-title").textContent = "Run " + run.id + " · " + run.definition_name;
    renderRunStatus();
    $("wf-run-error").textContent = run.error ? (run.error_code || "error") + ": " + run.error : "";
    var body = $("wf-steps");
    body.replaceChildren.apply(body, run.steps.map(stepRow));
  }

  function renderRunStatus() {
    var holder = $("wf-run-status");
    holder.dataset.status = page.selected.status;
    holder.replaceChildren(make("span", null, "Status "), badge(page.selected.status));
    renderDecisions(); // an ended run takes no decision
  }

  function setStep(stepId, status, data) {
    var step = page.selected.steps[stepId];
    if (!step) return;
    step.status = status;
    if (data.attempt) step.attempts = data.attempt;
    if (status === "failed") step.error_code = data.error || step.error_code;
    var row = $("wf-steps").querySelector('tr[data-step="' + CSS.escape(stepId) + '"]');
    if (row) row.replaceWith(stepRow(step));
    renderDecisions();
  }

  // ---- approvals: Approve and Reject on a step waiting for a person ---------------
  function awaitingDecision() {
    var selected = page.selected;
    // A decision sent holds until its step leaves "waiting"; a resumed run may wait again.
    Object.keys(selected.decided).forEach(function (id) {
      var step = selected.steps[id];
      if (!step || step.status !== "waiting") delete selected.decided[id];
    });
    return Object.keys(selected.steps)
      .map(function (id) {
        return selected.steps[id];
      })
      .filter(function (step) {
        return step.kind === "approval" && step.status === "waiting" && !selected.decided[step.id];
      });
  }

  function decisionForm(step, canDecide) {
    var form = make("div", "wf-decision");
    form.dataset.step = step.id;
    form.appendChild(make("p", "wf-decision-what", "Step " + step.id + " waits for a decision."));
    if (!canDecide) {
      form.appendChild(
        make("p", "note", "A key with the " + DECIDE_SCOPE + " scope may approve or reject it.")
      );
      return form;
    }
    var reasonId = "wf-reason-" + step.id;
    var label = make("label", null, "Reason (optional)");
    label.htmlFor = reasonId;
    var reason = make("input");
    reason.id = reasonId;
    reason.type = "text";
    reason.maxLength = 1000; // the signal's reason is at most 1,000 characters
    reason.autocomplete = "off";
    var approve = make("button", "primary", "Approve");
    var reject = make("button", "wf-reject", "Reject");
    [approve, reject].forEach(function (button, index) {
      button.type = "button";
      button.dataset.decision = index === 0 ? "approve" : "reject";
      button.dataset.step = step.id;
      button.setAttribute("aria-label", button.textContent + " step " + step.id);
    });
    var controls = make("p", "wf-decision-controls");
    controls.append(label, reason, approve, reject);
    form.appendChild(controls);
    return form;
  }

  // Keyed by step: a form already shown stays as it is (with any reason typed into
  // it) while the stream redraws the steps around it.
  function renderDecisions() {
    var holder = $("wf-decisions");
    var waiting = ENDED[page.selected.status] ? [] : awaitingDecision();
    var wanted = {};
    waiting.forEach(function (step) {
      wanted[step.id] = true;
    });
    Array.prototype.slice.call(holder.children).forEach(function (form) {
      if (!wanted[form.dataset.step]) form.remove();
    });
    var canDecide = holds(page.api.state.viewer, DECIDE_SCOPE);
    waiting.forEach(function (step) {
      if (!holder.querySelector('[data-step="' + CSS.escape(step.id) + '"]')) {
        holder.appendChild(decisionForm(step, canDecide));
      }
    });
    show(holder, waiting.length > 0);
  }

  async function decide(button) {
    var selected = page.selected;
    var stepId = button.dataset.step;
    var decision = button.dataset.decision;
    var form = button.closest(".wf-decision");
    var reason = form.querySelector("input").value.trim();
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (each) {
      each.disabled = true;
    });
    $("wf-decision-note").textContent = "";
    try {
      var body = { step_id: stepId, decision: decision };
      if (reason) body.reason = reason;
      await App.fetchApi(
        page.api,
        "POST",
        "/api/workflows/" + encodeURIComponent(selected.id) + "/signal",
        { body: body }
      );
    } catch (error) {
      buttons.forEach(function (each) {
        each.disabled = false;
      });
      if (error instanceof Stale || page.selected !== selected) return;
      $("wf-decision-note").textContent = error.message;
      $("wf-decision-note").dataset.outcome = "error";
      // Decided elsewhere, or the run ended meanwhile: show how it stands now.
      if (error.status === 409) readRun(selected).catch(report);
      return;
    }
    if (page.selected !== selected) return;
    // The step stays "waiting" until the run receives the signal: no second decision.
    selected.decided[stepId] = true;
    renderDecisions();
    $("wf-decision-note").textContent =
      decision === "approve"
        ? "Approved step " + stepId + ": the run continues."
        : "Rejected step " + stepId + ": the run ends (a resume waits for a decision again).";
    $("wf-decision-note").dataset.outcome = decision;
    $("wf-decision-note").focus();
  }

  function logEvent(type, stepId, status) {
    var list = $("wf-events");
    var words = [TIME.format(new Date()), type, stepId, status].filter(Boolean);
    var item = make("li", null, words.join(" "));
    item.dataset.type = type;
    if (stepId) item.dataset.step = stepId;
    if (status) item.dataset.status = status;
    list.appendChild(item);
    while (list.children.length > EVENTS_KEPT) list.removeChild(list.firstChild);
  }

  function live(text, state) {
    $("wf-live").textContent = text;
    $("wf-run").dataset.live = state;
  }

  function closeStream() {
    page.streamGeneration += 1;
    if (page.stream) {
      page.stream.close();
      page.stream = null;
    }
  }

  function openStream() {
    closeStream();
    var selected = page.selected;
    var generation = page.streamGeneration;
    var url = root() + "/api/workflows/" + encodeURIComponent(selected.id) + "/events";
    var source = new EventSource(url);
    page.stream = source;
    live("Connecting to the live stream…", "connecting");

    function current() {
      return generation === page.streamGeneration && page.selected === selected;
    }

    function on(type, handle) {
      source.addEventListener(type, function (event) {
        if (!current()) return;
        var data = {};
        try {
          data = JSON.parse(event.data);
        } catch (error) {
          return; // not ours: nothing to show
        }
        handle(data, type);
      });
    }

    on("snapshot", function (data) {
      renderRun(data.run);
      logEvent("snapshot");
      live("Live: following the run's events.", "open");
    });
    on("run.started", function () {
      selected.status = "running";
      renderRunStatus();
      logEvent("run.started");
    });
    Object.keys(STEP_STATUS).forEach(function (type) {
      on(type, function (data) {
        setStep(data.step_id, STEP_STATUS[type], data);
        logEvent(type, data.step_id);
      });
    });
    on("heartbeat", function () {
      $("wf-run").dataset.heartbeat = TIME.format(new Date());
    });
    on("run.finished", function (data) {
      closeStream(); // the server ends the stream: no reconnection
      selected.status = data.status;
      renderRunStatus();
      logEvent("run.finished", null, data.status);
      live("The run has ended; the stream is closed.", "ended");
      readRun(selected).catch(report); // its final timings and errors
    });
    on("dropped", function (data) {
      closeStream();
      logEvent("dropped", null, data.reason);
      live(
        data.reason === "shutting_down"
          ? "The server is restarting; the stream reopens at the next refresh."
          : "The stream fell behind; it reopens at the next refresh.",
        "closed"
      );
    });
    source.addEventListener("error", function () {
      if (!current()) return;
      if (source.readyState === EventSource.CLOSED) {
        // Refused (the run is gone, the key lost its scope, too many streams):
        // the next refresh reads the run and tries again.
        page.stream = null;
        live("The live stream is unavailable; the page reads the run at each refresh.", "closed");
      } else {
        live("Reconnecting to the live stream…", "connecting");
      }
    });
  }

  async function readRun(selected) {
    var run = await runtime("/api/workflows/" + encodeURIComponent(selected.id));
    if (page.selected === selected) renderRun(run);
    return run;
  }

  function report(error) {
    if (error instanceof Stale) return;
    $("wf-run-error").textContent = error.message || String(error);
  }

  async function selectRun(runId) {
    closeStream();
    page.selected = { id: runId, status: "", steps: {}, decided: {} };
    $("wf-events").replaceChildren();
    $("wf-steps").replaceChildren();
    $("wf-decisions").replaceChildren();
    show($("wf-decisions"), false);
    $("wf-decision-note").textContent = "";
    $("wf-run-error").textContent = "";
    $("wf-run").dataset.run = runId;
    show($("wf-run"), true);
    document.querySelectorAll("#wf-runs button[data-run]").forEach(function (button) {
      if (button.dataset.run === runId) button.setAttribute("aria-pressed", "true");
      else button.removeAttribute("aria-pressed");
    });
    $("wf-run-title").textContent = "Run " + runId;
    $("wf-run-title").focus();
    openStream();
  }

  // At each refresh: a picked run whose stream was refused or dropped is read
  // again, and followed again while it has not ended.
  async function keepFollowing() {
    var selected = page.selected;
    if (!selected || page.stream || ENDED[selected.status]) return;
    var run = await readRun(selected);
    if (page.selected === selected && !page.stream && !ENDED[run.status]) openStream();
  }

  // ---- the page's hooks ----------------------------------------------------------------
  // ``view``: the dashboard's state, api and actAs; ``context``: full, slow, win.
  // The runs are the session tenant's: an EventSource cannot send the header an
  // admin acts for another tenant with, so the tenant picker does not apply here.
  function refresh(view, context) {
    if (!served()) {
      note(
        "The System Runtime is not served with this dashboard (it runs standalone): " +
          "read its runs at its own address."
      );
      return [];
    }
    if (!holds(view.state.viewer, SCOPE)) {
      note(
        "This session's key lacks the workflows:read scope: sign in with a key that " +
          "holds it (as well as metrics:read) to see your tenant's runs."
      );
      return [];
    }
    note("");
    if (!page.api) page.api = Object.assign({}, view.api, { root: root() });
    var jobs = [refreshRuns(), keepFollowing()];
    if (context.slow) {
      jobs.push(
        refreshCounts(context.win),
        App.fetchApi(view.api, "GET", "/api/status")
          .then(function (response) {
            return response.json();
          })
          .then(renderQueues)
      );
    }
    return jobs;
  }

  // Another page shown: the stream closes (the next refresh here opens it again).
  function left() {
    if (!$("page-workflows").hidden) return;
    closeStream();
    if (page.selected && !ENDED[page.selected.status]) {
      live("Paused while another page is shown; it resumes here.", "closed");
    }
  }

  function reset() {
    closeStream();
    page.api = null;
    page.runs = [];
    page.cursor = null;
    page.selected = null;
    show($("wf-run"), false);
    // Nothing of the last session's tenant stays on the page for the next one.
    $("wf-decision-note").textContent = "";
    ["wf-runs", "wf-queues", "wf-steps", "wf-events", "wf-decisions"].forEach(function (id) {
      $(id).replaceChildren();
    });
    FIGURES.forEach(function (id) {
      figure(id, null);
    });
  }

  function start() {
    $("wf-runs").addEventListener("click", function (event) {
      var button = event.target.closest("button[data-run]");
      if (button) selectRun(button.dataset.run).catch(report);
    });
    $("wf-decisions").addEventListener("click", function (event) {
      var button = event.target.closest("button[data-decision]");
      if (button && !button.disabled) decide(button).catch(report);
    });
    $("wf-more").addEventListener("click", function () {
      loadMore().catch(report);
    });
    // After dashboard.js's own listener (added at its start, before this one).
    window.addEventListener("hashchange", left);
  }

  App.pages = App.pages || {};
  App.pages.workflows = { refresh: refresh, reset: reset };
  document.addEventListener("DOMContentLoaded", start);
})();
