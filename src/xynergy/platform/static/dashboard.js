// The Platform Dashboard's page. A file of ours, not an inline script: the page's
// Content-Security-Policy runs scripts from this origin only.
//
// Signing in exchanges an API key for the platform's HttpOnly session cookie
// (POST {app}/session); the key is sent once and never stored. The CSRF token is
// kept in this script's memory (GET {app}/session gives it again after a reload).
// Each section reads this app's JSON APIs and redraws in place every refresh:
// charts are uPlot, whose sizing goes through the CSSOM (allowed by style-src).
// Every chart and figure carries its last value in data- attributes, so tests
// (and curious people) can compare it with the API's answer.
//
// The theme, DOM helpers, API calls and signing in come from app.js (XynergyApp).
(function () {
  "use strict";

  var App = window.XynergyApp;
  var $ = App.$;
  var make = App.make;
  var show = App.show;
  var ApiError = App.ApiError;
  var Stale = App.Stale;
  var PAGES = ["overview", "ai", "resources"];
  // Platform-wide pages (dashboard_traffic.js, dashboard_cache.js): operators only.
  var OPERATOR_PAGES = { traffic: true, cache: true };
  // Pages of other files (dashboard_keys.js, dashboard_alerts.js, ..., loaded after this
  // one): XynergyApp.pages[name] = {refresh(view, context) -> jobs, reset()}, with a
  // nav link and a section#page-<name> like the pages above. ``view`` gives this page's
  // API calls (get, series, draw...); XynergyApp.dashboard its formats and helpers.
  var EXTRA = (App.pages = App.pages || {});
  // Bucket width per range: 60 points for an hour, about a hundred otherwise.
  var STEPS = { 3600: 60, 86400: 900, 604800: 3600, 2592000: 21600 };
  var REFRESH_MIN_S = 2;
  var REFRESH_MAX_S = 300;
  var SLOW_EVERY = 2; // spend and alerts change slowly: every other refresh
  var HISTORY_MAX = 240; // resource samples kept for the live chart
  var TOP_MODELS = 3;
  var CHART_HEIGHT = 220;
  // Tick spacings of the clock axis, in whole seconds (no sub-second ticks).
  var CLOCK_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];

  // ---- small helpers ----------------------------------------------------------
  var INTEGER = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  var DECIMAL = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });
  var USD = new Intl.NumberFormat("en-US", {
    style: "currency",
    currency: "USD",
    minimumFractionDigits: 2,
    maximumFractionDigits: 4
  });
  var PERCENT = new Intl.NumberFormat("en-US", { style: "percent", maximumFractionDigits: 1 });
  var TIME = new Intl.DateTimeFormat("en-GB", {
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    timeZone: "UTC"
  });
  var WHEN = new Intl.DateTimeFormat("en-GB", {
    dateStyle: "medium",
    timeStyle: "short",
    timeZone: "UTC"
  });

  function count(value) {
    return value === null || value === undefined ? "–" : INTEGER.format(value);
  }

  function usd(value) {
    return value === null || value === undefined ? "–" : USD.format(Number(value));
  }

  function ratio(value) {
    return value === null || value === undefined ? "–" : PERCENT.format(value);
  }

  function ms(value) {
    return value === null || value === undefined ? "–" : DECIMAL.format(value) + " ms";
  }

  function bytes(value) {
    if (value === null || value === undefined) return "–";
    var units = ["B", "KB", "MB", "GB", "TB"];
    var unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return DECIMAL.format(value) + " " + units[unit];
  }

  function when(iso) {
    return iso ? WHEN.format(new Date(iso)) + " UTC" : "–";
  }

  // A figure: its text, and its raw value for whoever compares it with the API.
  function figure(id, text, value) {
    var element = $(id);
    element.textContent = text;
    element.dataset.value = value === null || value === undefined ? "" : String(value);
  }

  function cell(row, text, className) {
    row.appendChild(make("td", className, text));
  }

  // Refill a select from ``items`` ({value, label, data}) after a ``first`` option
  // (value ""), keeping the choice while the items still hold it.
  function fill(select, first, items) {
    var chosen = select.value;
    var options = [make("option", null, first)];
    options[0].value = "";
    items.forEach(function (item) {
      var option = make("option", null, item.label);
      option.value = item.value;
      Object.keys(item.data || {}).forEach(function (name) {
        option.dataset[name] = item.data[name];
      });
      options.push(option);
    });
    select.replaceChildren.apply(select, options);
    var kept = items.some(function (item) {
      return item.value === chosen;
    });
    select.value = kept ? chosen : "";
  }

  // ---- state -----------------------------------------------------------------
  var refreshMs;
  var state = {
    csrf: null,
    session: null,
    viewer: null,
    generation: 0, // one more at every sign-in and sign-out
    page: "overview",
    tick: 0,
    timer: null,
    running: false,
    again: null,
    services: [],
    history: [] // [seconds, rss MB, lag ms] samples of this page's life
  };
  var charts = {}; // element id -> {plot, data, labels}

  // ---- HTTP ------------------------------------------------------------------
  // What app.js's fetchApi needs of this page; ``root`` is set at start.
  var api = {
    root: "",
    state: state,
    unreachable: "The server cannot be reached. Check your connection; the page tries again.",
    unauthorized: async function (response) {
      await response.text();
      signedOut("Your session has ended. Sign in again.");
      throw new Stale();
    }
  };

  async function request(method, path, options) {
    options = options || {};
    var response = await App.fetchApi(api, method, path, {
      query: App.query(options.params),
      actAs: options.actAs
    });
    return response.status === 204 ? null : response.json();
  }

  // A GET's JSON answer; ``params`` become its query string.
  function get(path, params) {
    return request("GET", path, { params: params });
  }

  // ---- who is looking ------------------------------------------------------------
  function operator() {
    return Boolean(state.viewer && state.viewer.operator);
  }

  function chosenTenant() {
    return operator() ? $("tenant").value : "";
  }

  // An admin key acts for the picked tenant; a metrics:read operator key names it
  // in ?tenant= where the API takes one (series, cost).
  function actAs() {
    return state.viewer && state.viewer.admin ? chosenTenant() : "";
  }

  // ---- time windows ----------------------------------------------------------------
  // Whole minutes up to the end of the current one: the same window gives the same
  // buckets on the page and in any later call with the same from/to.
  function windowNow() {
    var range = Number($("range").value);
    var end = Math.ceil(Date.now() / 60000) * 60;
    return { from: end - range, to: end, step: STEPS[range] || 60, range: range };
  }

  function iso(seconds) {
    return new Date(seconds * 1000).toISOString();
  }

  function seriesParams(metric, win, filters, whole) {
    var params = {
      metric: metric,
      from: iso(win.from),
      to: iso(win.to),
      step: whole ? win.range : win.step
    };
    Object.keys(filters || {}).forEach(function (name) {
      params[name] = filters[name];
    });
    return params;
  }

  async function series(metric, win, filters) {
    return request("GET", "/api/metrics/series", { params: seriesParams(metric, win, filters) });
  }

  // One bucket over the whole range: the figure the API computes from its sums.
  async function whole(metric, win, filters) {
    var body = await request("GET", "/api/metrics/series", {
      params: seriesParams(metric, win, filters, true)
    });
    return body.points.length ? body.points[0].value : null;
  }

  function aiFilters() {
    var tenant = chosenTenant();
    return tenant ? { tenant: tenant } : {};
  }

  function sum(points) {
    return points.reduce(function (total, point) {
      return total + (point.value || 0);
    }, 0);
  }

  // A secret shown once and never stored (a rotated key, a webhook secret): the panel
  // #<prefix>-secret with -name, -value (an input, selected for copying) and -copied;
  // its dataset[``owner``] says whose secret it shows.
  function secretPanel(prefix, owner) {
    function part(suffix) {
      return $(prefix + "-secret" + suffix);
    }
    return {
      show: function (name, value, id) {
        part("-name").textContent = name;
        part("-value").value = value;
        part("-copied").textContent = "";
        part("").dataset[owner] = id;
        show(part(""), true);
        part("-value").focus();
        part("-value").select();
      },
      clear: function () {
        part("-value").value = "";
        part("-copied").textContent = "";
        delete part("").dataset[owner];
        show(part(""), false);
      },
      copy: async function () {
        var input = part("-value");
        try {
          await navigator.clipboard.writeText(input.value);
          part("-copied").textContent = "Copied to the clipboard.";
        } catch (error) {
          // No clipboard access (permission refused): selected for Ctrl+C instead.
          input.focus();
          input.select();
          part("-copied").textContent = "Selected: press Ctrl+C (⌘C) to copy.";
        }
      }
    };
  }

  // What the pages of other files (loaded after this one) share with these: formats,
  // table cells, a window's from/to, a select refilled from a listing, a secret panel.
  App.dashboard = {
    count: count,
    ratio: ratio,
    ms: ms,
    sum: sum,
    cell: cell,
    range: function (win) {
      return { from: iso(win.from), to: iso(win.to) };
    },
    fill: fill,
    secretPanel: secretPanel
  };

  // ---- charts ----------------------------------------------------------------------
  var PALETTE = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed"];

  function cssVar(name) {
    return window.getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function clock(plot, splits) {
    return splits.map(function (seconds) {
      return TIME.format(new Date(seconds * 1000));
    });
  }

  function chartOptions(element, labels) {
    var fg = cssVar("--muted") || "#52606d";
    var grid = cssVar("--border") || "#cbd2d9";
    var axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    // Samples seconds apart (the resources chart): a clock, not milliseconds.
    var xAxis = element.dataset.axis === "clock"
      ? Object.assign({ values: clock, space: 80, incrs: CLOCK_STEPS }, axis)
      : axis;
    return {
      width: Math.max(element.clientWidth, 200),
      height: CHART_HEIGHT,
      scales: { x: { time: true } },
      axes: [xAxis, Object.assign({ size: 70 }, axis)],
      series: [{}].concat(
        labels.map(function (label, index) {
          return {
            label: label,
            stroke: PALETTE[index % PALETTE.length],
            width: 2,
            spanGaps: false,
            // Markers where values are few (a lone minute draws no line).
            points: { show: function (plot, seriesIndex, first, last) {
              var values = 0;
              var data = plot.data[seriesIndex];
              for (var index = first; index <= last; index += 1) {
                if (data[index] !== null && data[index] !== undefined) values += 1;
              }
              return values < 40;
            } }
          };
        })
      ),
      legend: { show: true },
      cursor: { drag: { x: false, y: false } }
    };
  }

  function emptyNote(element) {
    var note = element.parentNode.querySelector(".chart-empty");
    if (!note) {
      note = make("p", "note chart-empty");
      element.parentNode.appendChild(note);
    }
    return note;
  }

  // Draw ``lines`` ([{label, points: [{t, value}]}]) in the element; the same
  // plot is updated in place while its labels stay the same.
  function draw(id, lines, emptyText, scale) {
    var element = $(id);
    var xs = lines.length ? lines[0].points.map(function (point) {
      return Math.round(Date.parse(point.t) / 1000);
    }) : [];
    var data = [xs].concat(
      lines.map(function (line) {
        return line.points.map(function (point) {
          return point.value === null ? null : point.value * (scale || 1);
        });
      })
    );
    var labels = lines.map(function (line) {
      return line.label;
    });
    var existing = charts[id];
    if (existing && existing.labels.join("\u0000") === labels.join("\u0000")) {
      existing.plot.setData(data);
      existing.data = data;
    } else {
      if (existing) existing.plot.destroy();
      charts[id] = {
        plot: new window.uPlot(chartOptions(element, labels), data, element),
        data: data,
        labels: labels
      };
    }
    describe(element, lines, data);
    var empty = lines.every(function (line) {
      return line.points.every(function (point) {
        return !point.value;
      });
    });
    var note = emptyNote(element);
    note.textContent = empty ? emptyText : "";
    show(note, empty);
  }

  // What the chart shows, in words and data- attributes: its points, the last
  // value of its first line, and that line's total.
  function describe(element, lines, data) {
    var first = data.length > 1 ? data[1] : [];
    var last = null;
    for (var index = first.length - 1; index >= 0; index -= 1) {
      if (first[index] !== null) {
        last = first[index];
        break;
      }
    }
    element.dataset.points = String(first.length);
    element.dataset.last = last === null ? "" : String(last);
    element.dataset.total = String(
      first.reduce(function (total, value) {
        return total + (value || 0);
      }, 0)
    );
    element.setAttribute("role", "img");
    element.setAttribute(
      "aria-label",
      lines
        .map(function (line, index) {
          var values = data[index + 1];
          var latest = null;
          for (var at = values.length - 1; at >= 0; at -= 1) {
            if (values[at] !== null) {
              latest = values[at];
              break;
            }
          }
          return line.label + ": latest " + (latest === null ? "none" : DECIMAL.format(latest));
        })
        .join("; ")
    );
  }

  function redrawAll() {
    // Colours are drawn on the canvas: a new theme needs new plots.
    Object.keys(charts).forEach(function (id) {
      var chart = charts[id];
      chart.plot.destroy();
      chart.plot = new window.uPlot(chartOptions($(id), chart.labels), chart.data, $(id));
    });
  }

  function resizeAll() {
    Object.keys(charts).forEach(function (id) {
      var element = $(id);
      if (element.clientWidth > 0) {
        charts[id].plot.setSize({ width: element.clientWidth, height: CHART_HEIGHT });
      }
    });
  }

  // ---- overview ---------------------------------------------------------------------
  function renderStatus(status) {
    figure("fig-status", status.status === "ok" ? "All up" : "Degraded", status.status);
    $("fig-status").className = status.status === "ok" ? "good" : "bad";
    $("fig-status-age").textContent =
      "checked " + DECIMAL.format(status.age_seconds) + " s ago (every " +
      INTEGER.format(status.window_seconds) + " s)";
    $("fig-status-age").dataset.value = String(status.age_seconds);
    figure("fig-breakers", count(status.breakers.open), status.breakers.open);
    $("fig-breakers-of").textContent =
      status.breakers.status === "not_deployed"
        ? "AI Routing Engine not deployed here"
        : "of " + count(status.breakers.circuits.length) + " circuits";
    state.services = status.services.map(function (service) {
      return service.name;
    });
    var body = $("services");
    var rows = status.services.map(function (service) {
      var row = make("tr");
      row.dataset.service = service.name;
      cell(row, service.name);
      var badge = make("span", "badge " + service.status, service.status === "up" ? "Up" : "Down");
      var statusCell = make("td");
      statusCell.appendChild(badge);
      row.appendChild(statusCell);
      cell(row, ms(service.latency_ms), "num");
      cell(row, service.transport);
      cell(row, service.error || "");
      return row;
    });
    [["database", status.database], ["redis", status.redis]].forEach(function (pair) {
      var row = make("tr");
      cell(row, pair[0] + (pair[1].backend ? " (" + pair[1].backend + ")" : ""));
      var statusCell = make("td");
      var label = pair[1].status === "not_configured" ? "Not configured" : pair[1].status === "up" ? "Up" : "Down";
      statusCell.appendChild(make("span", "badge " + pair[1].status, label));
      row.appendChild(statusCell);
      cell(row, ms(pair[1].latency_ms), "num");
      cell(row, "backend");
      cell(row, pair[1].error || "");
      rows.push(row);
    });
    body.replaceChildren.apply(body, rows);
    show($("services-empty"), status.services.length === 0);
  }

  async function spend() {
    // The ledger's report when the AI Routing Engine answers; else the rollups.
    var params = { tenant: chosenTenant() };
    try {
      var report = await request("GET", "/api/cost", { params: params });
      var today = new Date().toISOString().slice(0, 10);
      var day = report.days.filter(function (entry) {
        return entry.day === today;
      })[0];
      return {
        report: report,
        today: day ? Number(day.cost_usd) : 0,
        month: Number(report.totals.cost_usd),
        projected: report.projected_month_end_usd,
        source: "from the usage ledger"
      };
    } catch (error) {
      if (error instanceof Stale || !(error instanceof ApiError) || error.status < 500) throw error;
      var now = Math.ceil(Date.now() / 60000) * 60;
      var midnight = Math.floor(Date.now() / 86400000) * 86400;
      var first = new Date();
      var monthStart = Date.UTC(first.getUTCFullYear(), first.getUTCMonth(), 1) / 1000;
      var todayUsd = await whole("ai_cost_usd", { from: midnight, to: now, range: now - midnight }, aiFilters());
      var monthUsd = await whole("ai_cost_usd", { from: monthStart, to: now, range: now - monthStart }, aiFilters());
      return { report: null, today: todayUsd, month: monthUsd, projected: null, source: "from the rollups" };
    }
  }

  async function firingAlerts() {
    var page = await request("GET", "/api/alerts", { params: { limit: 200 }, actAs: actAs() });
    return page.items.filter(function (rule) {
      return rule.state === "firing";
    }).length;
  }

  async function refreshOverview(win, slow) {
    var jobs = [request("GET", "/api/status").then(renderStatus)];
    if (operator()) {
      jobs.push(
        Promise.all([series("requests", win), series("errors_5xx", win)]).then(function (both) {
          var requests = sum(both[0].points);
          var errors = sum(both[1].points);
          figure("fig-requests", count(requests), requests);
          $("fig-request-rate").textContent = DECIMAL.format(requests / (win.range / 60)) + " per minute";
          var rate = requests ? errors / requests : null;
          figure("fig-error-rate", ratio(rate), rate);
          $("fig-errors").textContent = count(errors) + " errors";
          draw(
            "chart-overview-traffic",
            [
              { label: "Requests", points: both[0].points },
              { label: "5xx errors", points: both[1].points }
            ],
            "No requests in this range yet: call any API and the next minute's rollup shows here."
          );
        }),
        whole("latency_p99", win).then(function (value) {
          figure("fig-p99", ms(value), value);
        }),
        whole("cache_hit_rate", win).then(function (value) {
          figure("fig-cache-hit-rate", ratio(value), value);
          $("fig-cache-hit-rate").className = value !== null && value < 0.85 ? "bad" : "";
        })
      );
    } else {
      jobs.push(
        series("ai_cost_usd", win).then(function (body) {
          draw(
            "chart-overview-cost",
            [{ label: "AI spend (USD)", points: body.points }],
            "No AI spend in this range: calls to the AI Routing Engine show here within a minute."
          );
        })
      );
    }
    if (slow) {
      jobs.push(
        spend().then(function (figures) {
          figure("fig-spend-today", usd(figures.today), figures.today);
          figure("fig-spend-month", usd(figures.month), figures.month);
          $("fig-spend-source").textContent = figures.source;
          $("fig-spend-projected").textContent =
            figures.projected === null || figures.projected === undefined
              ? "projection after the month's first day"
              : "projected " + usd(figures.projected) + " by month end";
        }),
        firingAlerts().then(function (firing) {
          figure("fig-alerts", count(firing), firing);
          $("fig-alerts").className = firing ? "bad" : "good";
        })
      );
    }
    return jobs;
  }

  // ---- AI -------------------------------------------------------------------------------
  var lastModels = [];

  function renderCost(report) {
    var totals = report.totals;
    figure("ai-month", usd(totals.cost_usd), Number(totals.cost_usd));
    figure("ai-projected", usd(report.projected_month_end_usd), report.projected_month_end_usd);
    $("ai-projected-note").textContent =
      report.projected_month_end_usd === null
        ? "from the month's second day"
        : "at this month's pace";
    figure("ai-saved", usd(totals.saved_usd), Number(totals.saved_usd));
    var tokens = totals.input_tokens + totals.output_tokens;
    figure("ai-tokens", count(tokens), tokens);
    lastModels = report.models.items.slice(0, TOP_MODELS).map(function (item) {
      return item.name;
    });
    var models = $("ai-models");
    models.replaceChildren.apply(
      models,
      report.models.items.map(function (item) {
        var row = make("tr");
        row.dataset.model = item.name;
        cell(row, item.name);
        cell(row, count(item.requests), "num");
        cell(row, count(item.input_tokens), "num");
        cell(row, count(item.output_tokens), "num");
        cell(row, count(item.cache_hits), "num");
        cell(row, usd(item.cost_usd), "num");
        cell(row, usd(item.saved_usd), "num");
        return row;
      })
    );
    var tasks = $("ai-tasks");
    tasks.replaceChildren.apply(
      tasks,
      report.tasks.items.map(function (item) {
        var row = make("tr");
        cell(row, item.name || "(none)");
        cell(row, count(item.requests), "num");
        cell(row, count(item.input_tokens + item.output_tokens), "num");
        cell(row, usd(item.cost_usd), "num");
        cell(row, usd(item.saved_usd), "num");
        return row;
      })
    );
    var budgets = $("ai-budgets");
    budgets.replaceChildren.apply(
      budgets,
      report.budgets.map(function (budget) {
        var row = make("tr");
        cell(row, budget.key_id ? "Key " + budget.key_id : "Tenant");
        cell(row, usd(budget.limit_usd), "num");
        cell(row, usd(budget.spent_usd), "num");
        cell(row, budget.percent === null ? "–" : DECIMAL.format(budget.percent) + " %", "num");
        return row;
      })
    );
    show($("ai-empty"), totals.requests === 0);
    show($("ai-budgets-empty"), report.budgets.length === 0);
  }

  async function refreshAi(win, slow) {
    var filters = aiFilters();
    var jobs = [];
    if (slow || !lastModels.length) {
      jobs.push(request("GET", "/api/cost", { params: { tenant: chosenTenant() } }).then(renderCost));
    }
    var models = lastModels.slice();
    jobs.push(
      Promise.all(
        [series("ai_tokens", win, filters)].concat(
          models.map(function (model) {
            return series("ai_tokens", win, Object.assign({ model: model }, filters));
          })
        )
      ).then(function (all) {
        draw(
          "chart-ai-tokens",
          all.map(function (body, index) {
            return { label: index ? models[index - 1] : "All models", points: body.points };
          }),
          "No tokens in this range: AI calls show here within a minute."
        );
      }),
      Promise.all([series("ai_cost_usd", win, filters), series("ai_cache_hits", win, filters)]).then(
        function (both) {
          draw(
            "chart-ai-cost",
            [
              { label: "Spend (USD)", points: both[0].points },
              { label: "Cache hits", points: both[1].points }
            ],
            "No AI spend in this range."
          );
        }
      )
    );
    return jobs;
  }

  // ---- resources ------------------------------------------------------------------------------
  function renderResources(resources) {
    figure("res-rss", bytes(resources.memory.rss_bytes), resources.memory.rss_bytes);
    $("res-pressure").textContent = resources.memory.under_pressure
      ? "under pressure: caches shrunk"
      : resources.memory.pressure_threshold_bytes
        ? "pressure at " + bytes(resources.memory.pressure_threshold_bytes)
        : "no pressure threshold set";
    var fds = resources.file_descriptors;
    figure("res-fds", count(fds.open), fds.open);
    $("res-fds-limit").textContent =
      fds.soft_limit === null ? "no limit" : "of " + count(fds.soft_limit) + " (" + DECIMAL.format(fds.percent) + " %)";
    var loop = resources.event_loop;
    figure("res-lag", ms(loop.lag_last_ms), loop.lag_last_ms);
    $("res-lag-max").textContent = "max " + ms(loop.lag_max_ms) + ", mean " + ms(loop.lag_mean_ms);
    figure("res-tasks", count(loop.tasks), loop.tasks);
    var disks = $("res-disks");
    disks.replaceChildren.apply(
      disks,
      resources.disks.map(function (disk) {
        var row = make("tr");
        cell(row, disk.name);
        cell(row, disk.path, "path");
        cell(row, bytes(disk.used_bytes), "num");
        cell(row, bytes(disk.free_bytes), "num");
        cell(row, DECIMAL.format(disk.percent) + " %", "num");
        return row;
      })
    );
    state.history.push([
      Math.round(Date.parse(resources.measured_at) / 1000),
      (resources.memory.rss_bytes || 0) / 1048576,
      loop.lag_last_ms
    ]);
    if (state.history.length > HISTORY_MAX) state.history.shift();
    var points = function (column) {
      return state.history.map(function (sample) {
        return { t: new Date(sample[0] * 1000).toISOString(), value: sample[column] };
      });
    };
    draw(
      "chart-resources",
      [
        { label: "RSS (MB)", points: points(1) },
        { label: "Loop lag (ms)", points: points(2) }
      ],
      "Measuring: the chart fills at every refresh."
    );
  }

  async function refreshResources() {
    return [request("GET", "/api/resources").then(renderResources)];
  }

  // ---- refresh loop ------------------------------------------------------------------------------
  function showError(message) {
    $("dash-error").textContent = message || "";
  }

  async function refresh(full) {
    if (!state.session) return;
    if (state.running) {
      // One at a time; a change asked for meanwhile (a page, a range) runs next.
      state.again = state.again || (full ? "full" : "tick");
      return;
    }
    state.running = true;
    var generation = state.generation;
    var win = windowNow();
    var slow = full || state.tick % SLOW_EVERY === 0;
    var jobs;
    try {
      if (state.page === "ai") jobs = await refreshAi(win, slow);
      else if (state.page === "resources") jobs = await refreshResources();
      else if (EXTRA[state.page]) {
        jobs = await EXTRA[state.page].refresh(
          {
            state: state,
            api: api,
            actAs: actAs,
            draw: draw,
            refresh: refresh,
            get: get,
            series: series
          },
          { full: full, slow: slow, win: win }
        );
      } else jobs = await refreshOverview(win, slow);
      var results = await Promise.allSettled(jobs);
      if (generation !== state.generation) return;
      var failed = results.filter(function (result) {
        return result.status === "rejected" && !(result.reason instanceof Stale);
      });
      showError(failed.length ? failed[0].reason.message : "");
      state.tick += 1;
      $("dashboard").dataset.tick = String(state.tick);
      $("updated").textContent = "Updated " + TIME.format(new Date()) + " UTC; refreshes every " +
        INTEGER.format(refreshMs / 1000) + " s.";
    } finally {
      state.running = false;
      var again = state.again;
      state.again = null;
      if (again && generation === state.generation) refresh(again === "full");
    }
  }

  function schedule() {
    window.clearInterval(state.timer);
    state.timer = window.setInterval(function () {
      refresh(false);
    }, refreshMs);
  }

  // ---- pages --------------------------------------------------------------------------------------
  function pageFromHash() {
    var wanted = window.location.hash.replace(/^#/, "");
    if (PAGES.indexOf(wanted) < 0 && !EXTRA[wanted]) return "overview";
    if (OPERATOR_PAGES[wanted] && !operator()) return "overview";
    return wanted;
  }

  function showPage() {
    state.page = pageFromHash();
    PAGES.concat(Object.keys(EXTRA)).forEach(function (name) {
      show($("page-" + name), name === state.page);
    });
    document.querySelectorAll(".page-nav a").forEach(function (link) {
      if (link.dataset.page === state.page) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    });
    $("dashboard").dataset.page = state.page;
    window.requestAnimationFrame(resizeAll);
    refresh(true);
  }

  // ---- session ------------------------------------------------------------------------------------
  async function signedIn(session) {
    state.generation += 1;
    state.csrf = session.csrf_token;
    state.session = session;
    state.tick = 0;
    state.viewer = await request("GET", "/api/viewer");
    var isOperator = operator();
    document.querySelectorAll("[data-operator]").forEach(function (element) {
      show(element, isOperator);
    });
    document.querySelectorAll("[data-tenant-only]").forEach(function (element) {
      show(element, !isOperator);
    });
    $("who").textContent =
      (isOperator ? "Operator" : "Tenant " + session.tenant_id) + " · key " + session.key_id;
    $("dashboard").dataset.operator = String(isOperator);
    show($("who"), true);
    show($("sign-out"), true);
    show($("sign-in"), false);
    show($("workspace"), true);
    show($("loading"), false);
    if (isOperator) loadTenants().catch(report);
    showPage();
    schedule();
  }

  async function loadTenants() {
    // The month's spenders (names from the ledger's tenants); "All tenants" first.
    var page = await request("GET", "/api/cost/tenants", { params: { limit: 200 } });
    var select = $("tenant");
    var options = [make("option", null, "All tenants")];
    options[0].value = "";
    page.items.forEach(function (item) {
      var option = make("option", null, item.name || item.tenant_id);
      option.value = item.tenant_id;
      options.push(option);
    });
    select.replaceChildren.apply(select, options);
  }

  function signedOut(message) {
    state.generation += 1;
    state.csrf = null;
    state.session = null;
    state.viewer = null;
    window.clearInterval(state.timer);
    Object.keys(charts).forEach(function (id) {
      charts[id].plot.destroy();
      delete charts[id];
    });
    state.history = [];
    Object.keys(EXTRA).forEach(function (name) {
      EXTRA[name].reset();
    });
    show($("who"), false);
    show($("sign-out"), false);
    show($("workspace"), false);
    show($("loading"), false);
    show($("sign-in"), true);
    $("sign-in-error").textContent = message || "";
    $("api-key").focus();
  }

  function report(error) {
    if (error instanceof Stale) return;
    showError(error instanceof ApiError ? error.message : "Something went wrong: " + error);
  }

  async function restoreSession() {
    await App.restoreSession(api, signedIn, signedOut);
  }

  async function signIn(event) {
    await App.signIn(api, event, async function (session) {
      await signedIn(session);
      $("range").focus();
    }, async function (error) {
      if (error instanceof ApiError) {
        // Signed in, but the key cannot read the dashboard (no metrics:read).
        await signOut(true);
        $("sign-in-error").textContent = error.message;
      }
    });
  }

  async function signOut(quiet) {
    try {
      await request("DELETE", "/session");
    } catch (error) {
      if (error instanceof ApiError && error.status !== 401) {
        report(error);
        return;
      }
    }
    signedOut(quiet ? "" : "You are signed out.");
  }

  // ---- start ------------------------------------------------------------------------------------
  function refreshSeconds(main) {
    // ?refresh=<seconds> within bounds, else the server's default.
    var asked = Number(new URLSearchParams(window.location.search).get("refresh"));
    var seconds = asked || Number(main.dataset.refreshSeconds) || 30;
    return Math.min(Math.max(seconds, REFRESH_MIN_S), REFRESH_MAX_S) * 1000;
  }

  function start() {
    var main = $("dashboard");
    api.root = main.dataset.appRoot || "";
    refreshMs = refreshSeconds(main);
    App.themeToggle($("theme-toggle"), { onChange: redrawAll });
    $("sign-in-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", function () {
      signOut(false).catch(report);
    });
    $("controls").addEventListener("submit", function (event) {
      event.preventDefault();
    });
    $("range").addEventListener("change", function () {
      state.history = state.history.slice(-1);
      refresh(true);
    });
    $("tenant").addEventListener("change", function () {
      refresh(true);
    });
    $("refresh").addEventListener("click", function () {
      refresh(true);
    });
    window.addEventListener("hashchange", showPage);
    window.addEventListener("resize", resizeAll);
    var scheme = window.matchMedia("(prefers-color-scheme: dark)");
    scheme.addEventListener("change", redrawAll);
    restoreSession().catch(report);
  }

  document.addEventListener("DOMContentLoaded", start);
})();
