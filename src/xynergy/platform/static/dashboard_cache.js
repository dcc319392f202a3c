// The Platform Dashboard's Cache page, for operators: hit rate, hits, misses and
// evictions per step for every namespace or one, a table of the range's namespaces
// (hit rate and evictions of every replica, entries this process holds) from
// GET api/metrics/cache-namespaces, which also fills the namespace picker, and the
// sizes of this process's bounded caches. Registered on XynergyApp.pages;
// dashboard.js shows the page, calls its refresh and draws the charts (uPlot).
(function () {
  "use strict";

  var App = window.XynergyApp;
  var $ = App.$;
  var make = App.make;
  var show = App.show;
  var count = App.dashboard.count;
  var ratio = App.dashboard.ratio;
  var sum = App.dashboard.sum;
  var cell = App.dashboard.cell;
  var range = App.dashboard.range;
  var NAMESPACE_ROWS = 100; // namespaces listed (the listing's default bound)

  var page = { view: null, bound: false };

  function renderNamespaces(listing) {
    App.dashboard.fill(
      $("cache-namespace"),
      "All namespaces",
      listing.items.map(function (item) {
        return { value: item.namespace, label: item.namespace };
      })
    );

    var body = $("cache-namespaces");
    body.replaceChildren.apply(
      body,
      listing.items.map(function (item) {
        var row = make("tr");
        row.dataset.namespace = item.namespace;
        row.dataset.hitRate = item.hit_rate === null ? "" : String(item.hit_rate);
        row.dataset.entries = String(item.entries);
        row.dataset.evictions = String(item.evictions);
        cell(row, item.namespace);
        cell(row, ratio(item.hit_rate), "num");
        cell(row, count(item.hits), "num");
        cell(row, count(item.misses), "num");
        cell(row, count(item.evictions), "num");
        cell(row, count(item.entries), "num");
        return row;
      })
    );
    show($("cache-namespaces-empty"), listing.items.length === 0);
  }

  function renderCaches(resources) {
    var body = $("cache-sizes");
    body.replaceChildren.apply(
      body,
      resources.caches.map(function (cache) {
        var row = make("tr");
        cell(row, cache.name);
        cell(row, count(cache.entries), "num");
        cell(row, count(cache.max_entries), "num");
        cell(row, count(cache.configured_max_entries), "num");
        return row;
      })
    );
  }

  function refreshCharts(view, win) {
    var namespace = $("cache-namespace").value;
    var filters = namespace ? { namespace: namespace } : {};
    return Promise.all(
      ["cache_hit_rate", "cache_hits", "cache_misses", "cache_evictions"].map(function (metric) {
        return view.series(metric, win, filters);
      })
    ).then(function (four) {
      view.draw(
        "chart-cache-rate",
        [{ label: "Hit rate (%)", points: four[0].points }],
        "No cache lookups in this range.",
        100
      );
      view.draw(
        "chart-cache-lookups",
        [
          { label: "Hits", points: four[1].points },
          { label: "Misses", points: four[2].points },
          { label: "Evictions", points: four[3].points }
        ],
        "No cache lookups in this range."
      );
      show($("cache-empty"), sum(four[1].points) + sum(four[2].points) === 0);
    });
  }

  function bind(view) {
    page.view = view;
    if (page.bound) return;
    page.bound = true;
    $("cache-namespace").addEventListener("change", function () {
      page.view.refresh(false);
    });
  }

  function refresh(view, context) {
    bind(view);
    var jobs = [view.get("/api/resources").then(renderCaches)];
    // The picker first (the charts read it); the charts draw even if the listing fails.
    var listing = context.full || context.slow
      ? view.get("/api/metrics/cache-namespaces", Object.assign({ limit: NAMESPACE_ROWS }, range(context.win))).then(renderNamespaces)
      : Promise.resolve();
    jobs.push(
      listing,
      listing.catch(function () {}).then(function () {
        return refreshCharts(view, context.win);
      })
    );
    return jobs;
  }

  function reset() {
    var select = $("cache-namespace");
    select.replaceChildren(make("option", null, "All namespaces"));
    select.options[0].value = "";
    $("cache-namespaces").replaceChildren();
    $("cache-sizes").replaceChildren();
  }

  App.pages = App.pages || {};
  App.pages.cache = { refresh: refresh, reset: reset };
})();
