// The Platform Dashboard's "Intake" page: beta applications and contact messages by
// kind, status and day, and how many were spam, from the Intelligence Gateway's stats
// API (GET /api/stats, intake:read) over the dashboard's range in whole UTC days.
// A file of ours, registered on XynergyApp.pages for dashboard.js to show and
// refresh like its own sections; the chart is drawn by dashboard.js's uPlot helper.
(function () {
  "use strict";

  var App = window.XynergyApp;
  var $ = App.$;
  var make = App.make;
  var show = App.show;
  var SCOPE = "intake:read";
  var DAY_S = 86400;
  // The stats API's kinds and statuses, in the order a reader expects them.
  var KINDS = { beta: "Beta applications", contact: "Contact messages" };
  var STATUSES = {
    new: "New",
    reviewed: "Reviewed",
    accepted: "Accepted",
    rejected: "Rejected",
    spam: "Spam"
  };
  var INTEGER = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  var PERCENT = new Intl.NumberFormat("en-US", { style: "percent", maximumFractionDigits: 1 });

  function allowed(view) {
    var scopes = (view.state.viewer && view.state.viewer.scopes) || [];
    return scopes.indexOf("admin") >= 0 || scopes.indexOf(SCOPE) >= 0;
  }

  // The gateway's address on this server (from the template); absent: not served here.
  function api(view) {
    var root = $("page-intake").dataset.apiRoot;
    if (root === undefined) return null;
    return {
      root: root.replace(/\/$/, ""),
      state: view.state,
      unreachable: view.api.unreachable,
      unauthorized: view.api.unauthorized
    };
  }

  function isoDay(seconds) {
    return new Date(seconds * 1000).toISOString().slice(0, 10);
  }

  // The range in whole UTC days ending today: an hour or a day reads today.
  function days(win) {
    var count = Math.max(1, Math.ceil(win.range / DAY_S));
    var today = Math.floor(Date.now() / 1000 / DAY_S) * DAY_S;
    return { since: today - (count - 1) * DAY_S, until: today, count: count };
  }

  function figure(id, value, total) {
    var element = $(id);
    element.textContent = INTEGER.format(value);
    element.dataset.value = String(value);
    var sub = $(id + "-share");
    if (sub) sub.textContent = total ? PERCENT.format(value / total) + " of all" : "";
  }

  function table(id, attribute, names, counts) {
    var body = $(id);
    var known = Object.keys(names);
    // A value the API adds later still shows, after the known ones.
    Object.keys(counts).forEach(function (name) {
      if (known.indexOf(name) < 0) known.push(name);
    });
    body.replaceChildren.apply(
      body,
      known.map(function (name) {
        var row = make("tr");
        row.dataset[attribute] = name;
        row.dataset.value = String(counts[name] || 0);
        row.appendChild(make("td", null, names[name] || name));
        row.appendChild(make("td", "num", INTEGER.format(counts[name] || 0)));
        return row;
      })
    );
  }

  function sources(counts) {
    var body = $("intake-sources");
    var names = Object.keys(counts).sort(function (left, right) {
      return counts[right] - counts[left];
    });
    body.replaceChildren.apply(
      body,
      names.map(function (name) {
        var row = make("tr");
        row.dataset.source = name;
        row.dataset.value = String(counts[name]);
        row.appendChild(make("td", "path", name || "(none)"));
        row.appendChild(make("td", "num", INTEGER.format(counts[name])));
        return row;
      })
    );
    show($("intake-sources-empty"), names.length === 0);
  }

  function render(view, stats, span) {
    var total = stats.total;
    figure("intake-total", total, 0);
    figure("intake-beta", stats.by_kind.beta || 0, total);
    figure("intake-contact", stats.by_kind.contact || 0, total);
    figure("intake-spam", stats.by_status.spam || 0, total);
    $("intake-spam").className = stats.by_status.spam ? "bad" : "";
    $("intake-window").textContent = stats.since === stats.until
      ? "Today (UTC), " + stats.since + "."
      : "Whole UTC days " + stats.since + " to " + stats.until + ".";
    table("intake-kinds", "kind", KINDS, stats.by_kind);
    table("intake-statuses", "status", STATUSES, stats.by_status);
    sources(stats.by_source);
    // Every day of the window, zero where the API lists none (it lists days with any).
    var perDay = {};
    stats.by_day.forEach(function (entry) {
      perDay[entry.day] = entry.count;
    });
    var points = [];
    for (var at = span.since; at <= span.until; at += DAY_S) {
      var day = isoDay(at);
      points.push({ t: day + "T00:00:00Z", value: perDay[day] || 0 });
    }
    view.draw(
      "chart-intake-days",
      [{ label: "Submissions", points: points }],
      "No submissions in this range: the intake forms' posts show here."
    );
    show($("intake-empty"), total === 0);
  }

  async function refresh(view, context) {
    var target = api(view);
    var can = allowed(view);
    show($("intake-scope"), !can);
    show($("intake-unserved"), can && !target);
    show($("intake-body"), can && Boolean(target));
    if (!can || !target) return [];
    var span = days(context.win);
    var query = "?since=" + isoDay(span.since) + "&until=" + isoDay(span.until);
    return [
      App.fetchApi(target, "GET", "/api/stats", { query: query, actAs: view.actAs() })
        .then(function (response) {
          return response.json();
        })
        .then(function (stats) {
          render(view, stats, span);
        })
    ];
  }

  function reset() {
    ["intake-kinds", "intake-statuses", "intake-sources"].forEach(function (id) {
      $(id).replaceChildren();
    });
  }

  App.pages = App.pages || {};
  App.pages.intake = { refresh: refresh, reset: reset };
})();
