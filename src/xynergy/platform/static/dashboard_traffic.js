// The Platform Dashboard's Traffic page, for operators: requests and 5xx errors,
// latency percentiles and rate-limit rejections per step, for the whole platform,
// one service or one route template; and a table of the range's services. The
// pickers list what had requests in the range (GET api/metrics/services and
// api/metrics/routes, busiest first), so nobody types a route. Registered on
// XynergyApp.pages; dashboard.js shows the page, calls its refresh and draws the
// charts (uPlot).
(function () {
  "use strict";

  var App = window.XynergyApp;
  var $ = App.$;
  var make = App.make;
  var show = App.show;
  var count = App.dashboard.count;
  var ratio = App.dashboard.ratio;
  var ms = App.dashboard.ms;
  var sum = App.dashboard.sum;
  var range = App.dashboard.range;
  var fill = App.dashboard.fill;
  var PICKER_ROWS = 100; // services and routes offered (the listings' default bound)
  var TOP_LIMITS = 3; // rate limits drawn beside the total

  var page = { view: null, bound: false };

  // The picked route is "<service> <route>" (a template is unique only per service).
  function filters() {
    var picked = {};
    var service = $("traffic-service").value;
    if (service) picked.service = service;
    var option = $("traffic-route").selectedOptions[0];
    if (option && option.value) {
      picked.service = option.dataset.service;
      picked.route = option.dataset.route;
    }
    return picked;
  }

  function renderServices(listing) {
    fill(
      $("traffic-service"),
      "All services",
      listing.items.map(function (item) {
        return { value: item.service, label: item.service };
      })
    );
    var body = $("traffic-services");
    body.replaceChildren.apply(
      body,
      listing.items.map(function (item) {
        var row = make("tr");
        row.dataset.service = item.service;
        row.dataset.requests = String(item.requests);
        row.appendChild(make("td", null, item.service));
        row.appendChild(make("td", "num", count(item.requests)));
        row.appendChild(make("td", "num", ratio(item.error_rate)));
        row.appendChild(make("td", "num", ms(item.latency_p99_ms)));
        row.appendChild(make("td", "num", count(item.rate_limited)));
        return row;
      })
    );
    show($("traffic-empty"), listing.items.length === 0);
  }

  function renderRoutes(listing) {
    var service = $("traffic-service").value;
    fill(
      $("traffic-route"),
      "All routes",
      listing.items.map(function (item) {
        return {
          value: item.service + " " + item.route,
          label: (service ? "" : item.service + " ") + item.route,
          data: { service: item.service, route: item.route }
        };
      })
    );
  }

  async function refreshPickers(view, win) {
    var params = Object.assign({ limit: PICKER_ROWS }, range(win));
    renderServices(await view.get("/api/metrics/services", params));
    var service = $("traffic-service").value;
    renderRoutes(
      await view.get("/api/metrics/routes", Object.assign({ service: service }, params))
    );
  }

  async function refreshRejections(view, win, picked) {
    var params = Object.assign(
      { metric: "rate_limit_rejections", group_by: "rate_class", limit: TOP_LIMITS, step: win.step },
      range(win),
      picked
    );
    var both = await Promise.all([
      view.series("rate_limit_rejections", win, picked),
      view.get("/api/metrics/series/grouped", params)
    ]);
    view.draw(
      "chart-traffic-rejections",
      [{ label: "Every limit", points: both[0].points }].concat(
        both[1].series.map(function (line) {
          return { label: line.group.rate_class, points: line.points };
        })
      ),
      "No request was refused by a rate limit in this range."
    );
  }

  function refreshCharts(view, win) {
    var picked = filters();
    return [
      Promise.all([
        view.series("requests", win, picked),
        view.series("errors_5xx", win, picked)
      ]).then(function (both) {
        view.draw(
          "chart-traffic-requests",
          [
            { label: "Requests", points: both[0].points },
            { label: "5xx errors", points: both[1].points }
          ],
          "No requests match in this range: widen the range or pick all services."
        );
        if (!picked.service) show($("traffic-empty"), sum(both[0].points) === 0);
      }),
      Promise.all(
        ["latency_p50", "latency_p95", "latency_p99"].map(function (metric) {
          return view.series(metric, win, picked);
        })
      ).then(function (three) {
        view.draw(
          "chart-traffic-latency",
          [
            { label: "p50", points: three[0].points },
            { label: "p95", points: three[1].points },
            { label: "p99", points: three[2].points }
          ],
          "No latency to show: no request matched in this range."
        );
      }),
      refreshRejections(view, win, picked)
    ];
  }

  function bind(view) {
    page.view = view;
    if (page.bound) return;
    page.bound = true;
    $("traffic-service").addEventListener("change", function () {
      // Another service's routes: the route picker is refilled first.
      $("traffic-route").value = "";
      page.view.refresh(true);
    });
    $("traffic-route").addEventListener("change", function () {
      page.view.refresh(false);
    });
  }

  function refresh(view, context) {
    bind(view);
    // The pickers first (the charts read what they hold); the charts draw even if
    // the listings fail, whose error the page shows.
    var pickers = context.full || context.slow ? refreshPickers(view, context.win) : Promise.resolve();
    var charts = pickers
      .catch(function () {})
      .then(function () {
        return Promise.all(refreshCharts(view, context.win));
      });
    return [pickers, charts];
  }

  function reset() {
    $("traffic-service").replaceChildren(make("option", null, "All services"));
    $("traffic-service").options[0].value = "";
    $("traffic-route").replaceChildren(make("option", null, "All routes"));
    $("traffic-route").options[0].value = "";
    $("traffic-services").replaceChildren();
  }

  App.pages = App.pages || {};
  App.pages.traffic = { refresh: refresh, reset: reset };
})();
