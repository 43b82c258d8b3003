/*
 * The function page's Monitor tab (section[data-monitor], monitoring/tab_monitor.html), and
 * the Dashboard's account-level charts (monitoring/dashboard.html: the Metrics view alone):
 *
 *   Metrics view   draws the charts from the JSON embedded in the page, then re-fetches it
 *                  from data-metrics-url on Refresh, on a new time range and on auto-refresh.
 *                  Chart.js is loaded from data-chartjs-src the first time it is needed.
 *   Logs view      reloads #monitor-invocations with htmx from data-invocations-url; a click
 *                  or Enter/Space on a row expands it and htmx fetches that invocation's logs.
 *
 * Everything is wired by event delegation, so a tab swapped in by htmx needs no extra code.
 */
(function () {
  "use strict";

  if (window.StratusMonitor) {
    return;
  }

  var AUTO_REFRESH_KEY = "stratus.monitor.autoRefreshSeconds";
  var TEXT_COLOR = "#5f6b7a";
  var GRID_COLOR = "#e9ebed";
  var chartLibrary = null;

  function monitorOf(element) {
    return element instanceof Element ? element.closest("[data-monitor]") : null;
  }

  function stateOf(root) {
    if (!root.stratusMonitor) {
      root.stratusMonitor = {
        view: root.getAttribute("data-view") || "metrics",
        range: root.getAttribute("data-range") || "3h",
        payload: null,
        sequence: 0,
        timer: null,
        failed: false,
      };
    }
    return root.stratusMonitor;
  }

  // ------------------------------------------------------------------ status line

  function setBusy(root, busy) {
    root.setAttribute("aria-busy", busy ? "true" : "false");
    var spinner = root.querySelector("[data-monitor-spinner]");
    if (spinner) {
      spinner.classList.toggle("is-visible", busy);
    }
  }

  function utcClock(date) {
    return date.toISOString().slice(11, 19) + " UTC";
  }

  function showStatus(root, message, isError) {
    var status = root.querySelector("[data-monitor-status]");
    if (!status) {
      return;
    }
    status.textContent = message;
    status.classList.toggle("is-error", Boolean(isError));
  }

  function showUpdated(root) {
    showStatus(root, "Updated " + utcClock(new Date()), false);
  }

  // ------------------------------------------------------------------ charts

  function loadChartLibrary(root) {
    if (window.Chart) {
      return Promise.resolve(window.Chart);
    }
    if (!chartLibrary) {
      chartLibrary = new Promise(function (resolve, reject) {
        var script = document.createElement("script");
        script.src = root.getAttribute("data-chartjs-src");
        script.addEventListener("load", function () {
          resolve(window.Chart);
        });
        script.addEventListener("error", function () {
          chartLibrary = null;
          script.remove();
          reject(new Error("The chart library could not be loaded."));
        });
        document.head.appendChild(script);
      });
    }
    return chartLibrary;
  }

  function configureDefaults(Chart) {
    if (Chart.stratusConfigured) {
      return;
    }
    var bodyFont = window.getComputedStyle(document.body).fontFamily;
    if (bodyFont) {
      Chart.defaults.font.family = bodyFont;
    }
    Chart.defaults.font.size = 11;
    Chart.defaults.color = TEXT_COLOR;
    Chart.stratusConfigured = true;
  }

  function withAlpha(hex, alpha) {
    var value = parseInt(hex.slice(1), 16);
    return (
      "rgba(" + ((value >> 16) & 255) + ", " + ((value >> 8) & 255) + ", " + (value & 255) +
      ", " + alpha + ")"
    );
  }

  var FEW_POINTS = 5;
  var FEW_POINTS_RADIUS = 4;
  var ISOLATED_POINT_RADIUS = 3;

  function isMissing(value) {
    return value === null || value === undefined;
  }

  // A datapoint with no neighbours would be invisible on a line without its own dot, and a
  // series of a few datapoints (one invocation, at the right edge) is easy to miss: both get
  // dots, the latter larger ones.
  function pointRadius(context) {
    var data = context.dataset.data;
    var index = context.dataIndex;
    if (isMissing(data[index])) {
      return 0;
    }
    var present = data.filter(function (value) {
      return !isMissing(value);
    }).length;
    if (present <= FEW_POINTS) {
      return FEW_POINTS_RADIUS;
    }
    var before = index > 0 ? data[index - 1] : null;
    var after = index < data.length - 1 ? data[index + 1] : null;
    return isMissing(before) && isMissing(after) ? ISOLATED_POINT_RADIUS : 0;
  }

  function datasetConfig(spec) {
    var isBar = spec.kind === "bar";
    return {
      type: isBar ? "bar" : "line",
      label: spec.label,
      data: spec.data,
      borderColor: spec.color,
      backgroundColor: isBar ? withAlpha(spec.color, 0.75) : spec.color,
      borderWidth: isBar ? 0 : 1.5,
      pointRadius: isBar ? 0 : pointRadius,
      pointHoverRadius: 5,
      pointHitRadius: 6,
      spanGaps: false,
      maxBarThickness: 14,
      yAxisID: spec.axis === "percent" ? "percent" : "y",
      order: isBar ? 2 : 1,
    };
  }

  // Multi-day labels ("MM/DD HH:MM") are drawn as the time over the date.
  function timeTick(value) {
    var parts = String(this.getLabelForValue(value)).split(" ");
    return parts.length === 2 ? [parts[1], parts[0]] : parts[0];
  }

  // Time ticks fall on round UTC times chosen from the range alone, so every chart labels the
  // same times whatever its width or second axis (Chart.js's own skipping depends on both).
  var MAX_TIME_TICKS = 7;
  var TICK_STEPS_MINUTES = [1, 2, 5, 10, 15, 30, 60, 120, 180, 240, 360, 720, 1440, 2880];

  function timeTickIndices(payload) {
    var count = payload.labels.length;
    var periodMs = payload.period_seconds * 1000;
    var startMs = Date.parse(payload.start);
    if (!count || !periodMs || isNaN(startMs)) {
      return [];
    }
    var spanMinutes = (count * periodMs) / 60000;
    var stepMs = null;
    for (var i = 0; i < TICK_STEPS_MINUTES.length; i++) {
      var candidate = TICK_STEPS_MINUTES[i] * 60000;
      if (candidate % periodMs === 0 && spanMinutes / TICK_STEPS_MINUTES[i] <= MAX_TIME_TICKS) {
        stepMs = candidate;
        break;
      }
    }
    stepMs = stepMs || periodMs * Math.ceil(count / MAX_TIME_TICKS);
    var indices = [];
    for (var index = 0; index < count; index++) {
      if ((startMs + index * periodMs) % stepMs === 0) {
        indices.push(index);
      }
    }
    return indices;
  }

  function keepTimeTicks(scale, payload) {
    var wanted = {};
    timeTickIndices(payload).forEach(function (index) {
      wanted[index] = true;
    });
    scale.ticks = scale.ticks.filter(function (tick) {
      return wanted[tick.value];
    });
  }

  // Bars are drawn under lines (dataset order), but legends and tooltips keep the server's order.
  function byDatasetIndex(a, b) {
    return a.datasetIndex - b.datasetIndex;
  }

  function chartConfig(root, spec, payload) {
    var scales = {
      x: {
        grid: { display: false },
        border: { color: "#c6c6cd" },
        // Bars need half a period of room at each end; lines get the same so that the
        // charts' time axes line up.
        offset: true,
        afterBuildTicks: function (scale) {
          keepTimeTicks(scale, stateOf(root).payload);
        },
        ticks: {
          autoSkip: false,
          maxRotation: 0,
          callback: timeTick,
        },
      },
      y: {
        beginAtZero: true,
        grace: "5%",
        border: { display: false },
        grid: { color: GRID_COLOR },
        title: { display: true, text: spec.unit },
        ticks: { maxTicksLimit: 5, precision: spec.unit === "Count" ? 0 : undefined },
      },
    };
    var hasPercent = spec.datasets.some(function (dataset) {
      return dataset.axis === "percent";
    });
    if (hasPercent) {
      scales.percent = {
        position: "right",
        min: 0,
        max: 100,
        border: { display: false },
        grid: { drawOnChartArea: false },
        title: { display: true, text: "%" },
        ticks: { stepSize: 25 },
      };
    }
    return {
      type: "line",
      data: { labels: payload.labels, datasets: spec.datasets.map(datasetConfig) },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: scales,
        plugins: {
          legend: {
            position: "bottom",
            align: "start",
            labels: {
              boxWidth: 10,
              boxHeight: 10,
              color: "#000716",
              font: { size: 12 },
              sort: byDatasetIndex,
            },
          },
          tooltip: {
            itemSort: byDatasetIndex,
            callbacks: {
              title: function (items) {
                var titles = stateOf(root).payload.titles;
                return items.length ? titles[items[0].dataIndex] : "";
              },
            },
          },
        },
      },
    };
  }

  function destroyDetachedCharts(Chart) {
    Object.values(Chart.instances).forEach(function (chart) {
      if (!chart.canvas || !chart.canvas.isConnected) {
        chart.destroy();
      }
    });
  }

  function drawCharts(root, payload) {
    var state = stateOf(root);
    state.payload = payload;
    root.querySelectorAll("[data-monitor-period]").forEach(function (element) {
      element.textContent = payload.period_label;
    });
    return loadChartLibrary(root).then(function (Chart) {
      configureDefaults(Chart);
      destroyDetachedCharts(Chart);
      payload.charts.forEach(function (spec) {
        var container = root.querySelector('[data-chart="' + spec.slug + '"]');
        if (!container) {
          return;
        }
        var canvas = container.querySelector("canvas");
        var empty = container.querySelector("[data-chart-empty]");
        if (empty) {
          empty.hidden = spec.has_data;
        }
        var chart = Chart.getChart(canvas);
        if (!chart) {
          new Chart(canvas, chartConfig(root, spec, payload));
          return;
        }
        chart.data.labels = payload.labels;
        spec.datasets.forEach(function (dataset, index) {
          chart.data.datasets[index].data = dataset.data;
        });
        chart.update("none");
      });
    });
  }

  function refreshMetrics(root) {
    var state = stateOf(root);
    var sequence = ++state.sequence;
    var url = withRange(root.getAttribute("data-metrics-url"), state.range);
    setBusy(root, true);
    return fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        var isJson = (response.headers.get("Content-Type") || "").indexOf("json") !== -1;
        // A signed-out session is redirected to the sign-in page, which is not JSON.
        var body = isJson ? response.json() : Promise.resolve({});
        return body.then(function (data) {
          if (!response.ok || !isJson) {
            throw new Error(
              data.message ||
                "The metrics could not be loaded (HTTP " + response.status + "). Reload the page."
            );
          }
          return data;
        });
      })
      .then(function (payload) {
        if (sequence === state.sequence) {
          return drawCharts(root, payload).then(function () {
            showUpdated(root);
          });
        }
      })
      .catch(function (error) {
        if (sequence === state.sequence) {
          showStatus(root, error.message || "The metrics could not be loaded.", true);
        }
      })
      .finally(function () {
        if (sequence === state.sequence) {
          setBusy(root, false);
        }
      });
  }

  // ------------------------------------------------------------------ recent invocations

  function toggleInvocation(row, expand) {
    var panel = document.getElementById(row.getAttribute("aria-controls"));
    if (!panel) {
      return;
    }
    var open = expand === undefined ? row.getAttribute("aria-expanded") !== "true" : expand;
    row.setAttribute("aria-expanded", open ? "true" : "false");
    row.classList.toggle("is-selected", open);
    panel.hidden = !open;
    var loader = panel.querySelector("[data-invocation-logs]");
    if (open && loader && !loader.querySelector("[data-logs-loaded]") && window.htmx) {
      // A direct request rather than an hx-trigger: a row swapped in a moment ago can be
      // expanded before htmx has processed it.
      window.htmx.ajax("GET", loader.getAttribute("data-logs-url"), {
        source: loader,
        target: loader,
        swap: "innerHTML",
      });
    }
  }

  function refreshInvocations(root) {
    var state = stateOf(root);
    if (!window.htmx) {
      return Promise.resolve();
    }
    var expanded = Array.prototype.map.call(
      root.querySelectorAll("[data-invocation-row][aria-expanded='true']"),
      function (row) {
        return row.getAttribute("aria-controls");
      }
    );
    var url = withRange(root.getAttribute("data-invocations-url"), state.range);
    setBusy(root, true);
    state.failed = false;
    return window.htmx
      .ajax("GET", url, { target: "#monitor-invocations", swap: "outerHTML" })
      .then(function () {
        if (state.failed) {
          return;
        }
        expanded.forEach(function (id) {
          var row = root.querySelector("[data-invocation-row][aria-controls='" + id + "']");
          if (row) {
            toggleInvocation(row, true);
          }
        });
        showUpdated(root);
      })
      .catch(function () {
        showStatus(root, "The invocations could not be loaded. Reload the page.", true);
      })
      .finally(function () {
        setBusy(root, false);
      });
  }

  // ------------------------------------------------------------------ controls

  function refresh(root) {
    return stateOf(root).view === "logs" ? refreshInvocations(root) : refreshMetrics(root);
  }

  function withRange(href, range) {
    var url = new URL(href, window.location.href);
    url.searchParams.set("range", range);
    return url.pathname + url.search;
  }

  function setRange(root, range) {
    var state = stateOf(root);
    state.range = range;
    root.setAttribute("data-range", range);
    root.querySelectorAll("[data-monitor-range-form] button[name='range']").forEach(function (b) {
      b.setAttribute("aria-pressed", b.value === range ? "true" : "false");
    });
    var rangeValue = root.querySelector("#monitor-range-value");
    if (rangeValue) {
      rangeValue.value = range;
    }
    root.querySelectorAll("[data-monitor-view-link]").forEach(function (link) {
      link.setAttribute("href", withRange(link.getAttribute("href"), range));
    });
    var page = new URL(window.location.href);
    // The function page's Monitor tab has sub-views; the Dashboard's charts have none.
    if (root.hasAttribute("data-view")) {
      page.searchParams.set("tab", "monitor");
      page.searchParams.set("view", state.view);
    }
    page.searchParams.set("range", range);
    window.history.replaceState(window.history.state, "", page.pathname + page.search);
    refresh(root);
  }

  function setAutoRefresh(root, seconds) {
    var state = stateOf(root);
    if (state.timer) {
      window.clearInterval(state.timer);
      state.timer = null;
    }
    if (seconds > 0) {
      state.timer = window.setInterval(function () {
        if (!root.isConnected) {
          window.clearInterval(state.timer);
          return;
        }
        if (!document.hidden) {
          refresh(root);
        }
      }, seconds * 1000);
    }
  }

  function rememberAutoRefresh(seconds) {
    try {
      window.sessionStorage.setItem(AUTO_REFRESH_KEY, String(seconds));
    } catch (error) {
      // Storage can be unavailable (private mode); the choice then lasts for this view only.
    }
  }

  function rememberedAutoRefresh() {
    try {
      return parseInt(window.sessionStorage.getItem(AUTO_REFRESH_KEY) || "0", 10) || 0;
    } catch (error) {
      return 0;
    }
  }

  function init(root) {
    if (root.stratusMonitor) {
      return;
    }
    var state = stateOf(root);
    var data = root.querySelector("#monitor-metrics-data");
    if (state.view === "metrics" && data) {
      drawCharts(root, JSON.parse(data.textContent)).catch(function (error) {
        showStatus(root, error.message, true);
      });
    }
    var seconds = rememberedAutoRefresh();
    var select = root.querySelector("[data-monitor-auto-refresh]");
    if (select && seconds && select.querySelector("option[value='" + seconds + "']")) {
      select.value = String(seconds);
      setAutoRefresh(root, seconds);
    }
  }

  function initWithin(element) {
    if (!(element instanceof Element)) {
      return;
    }
    if (element.matches("[data-monitor]")) {
      init(element);
    }
    element.querySelectorAll("[data-monitor]").forEach(init);
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-monitor-range-form")) {
      return;
    }
    var root = monitorOf(form);
    var submitter = event.submitter;
    if (!root || !submitter || submitter.name !== "range") {
      return;
    }
    event.preventDefault();
    setRange(root, submitter.value);
  });

  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    if (!target) {
      return;
    }
    var refreshButton = target.closest("[data-monitor-refresh]");
    if (refreshButton) {
      var root = monitorOf(refreshButton);
      if (root) {
        refresh(root);
      }
      return;
    }
    var row = target.closest("[data-invocation-row]");
    // Selecting text in a row (to copy a request id) is not a click on the row.
    if (row && !String(window.getSelection() || "")) {
      toggleInvocation(row);
    }
  });

  document.addEventListener("keydown", function (event) {
    var row = event.target instanceof Element ? event.target : null;
    if (!row || !row.matches("[data-invocation-row]")) {
      return;
    }
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      toggleInvocation(row);
    }
  });

  document.addEventListener("change", function (event) {
    var select = event.target;
    if (!(select instanceof HTMLSelectElement) || !select.hasAttribute("data-monitor-auto-refresh")) {
      return;
    }
    var root = monitorOf(select);
    var seconds = parseInt(select.value, 10) || 0;
    rememberAutoRefresh(seconds);
    if (root) {
      setAutoRefresh(root, seconds);
      if (seconds) {
        refresh(root);
      }
    }
  });

  document.addEventListener("htmx:responseError", function (event) {
    var source = event.detail && event.detail.elt;
    var root = monitorOf(source);
    if (!root) {
      return;
    }
    var xhr = event.detail.xhr;
    var reason = (xhr && xhr.responseText && xhr.responseText.length < 300 && xhr.status === 400)
      ? xhr.responseText
      : "The request failed (HTTP " + (xhr ? xhr.status : "error") + ").";
    if (source.matches("[data-invocation-logs]")) {
      source.textContent = "Could not load the log events. " + reason;
    } else {
      stateOf(root).failed = true;
      showStatus(root, reason, true);
    }
  });

  document.addEventListener("htmx:load", function (event) {
    initWithin(event.target);
  });

  function initAll() {
    initWithin(document.body);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", initAll);
  } else {
    initAll();
  }

  window.StratusMonitor = { refresh: refresh, setRange: setRange };
})();
