/* Music analytics dashboard: plain JS (no build step) over the /v0 API, charts by Chart.js.
 *
 * The token comes from the page's own URL (?token=..., then kept in sessionStorage and removed
 * from the address bar) or from the token form. body[data-state] tells tests (and CSS) where
 * the page is: "loading" | "token" | "refreshing" | "ready" | "error"; body[data-loads] counts
 * the finished loads of the whole dashboard (the first one is 1).
 */
(function () {
  "use strict";

  var TOKEN_KEY = "music-analytics.token";
  var DSP_NAMES = { spotify: "Spotify", youtube: "YouTube", apple_music: "Apple Music" };
  var DSP_COLORS = { spotify: "#1db954", youtube: "#e62117", apple_music: "#a855f7" };
  var PALETTE = [
    "#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6",
    "#06b6d4", "#ec4899", "#84cc16", "#f97316", "#64748b",
  ];
  var DEFAULT_DAYS = 30;

  var numberFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
  var decimalFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
  var percentFormat = new Intl.NumberFormat(undefined, { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 });

  var $ = function (selector, root) { return (root || document).querySelector(selector); };

  var state = {
    token: null,
    filters: null,
    datesTouched: false, // the user changed the dates: then every section uses them
    generation: 0, // the newest load; answers of older loads are dropped
    loads: 0,
  };
  var memoryToken = null; // when sessionStorage is unavailable

  // ---------------------------------------------------------------- formatting

  function fmt(value) {
    return value === null || value === undefined || value === "" ? "–" : numberFormat.format(Number(value));
  }
  function fmtDecimal(value) {
    return value === null || value === undefined ? "–" : decimalFormat.format(Number(value));
  }
  function fmtPercent(value) {
    return value === null || value === undefined ? "–" : percentFormat.format(Number(value));
  }
  function fmtDuration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    var s = Math.round(Number(seconds));
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    if (h > 0) return numberFormat.format(h) + " h " + m + " min";
    if (m > 0) return m + " min " + (s % 60) + " s";
    return s + " s";
  }
  function dspName(dsp) { return DSP_NAMES[dsp] || dsp; }

  // Dates are "YYYY-MM-DD" strings; arithmetic in UTC so no time zone shifts a day.
  function addDays(isoDate, days) {
    var d = new Date(isoDate + "T00:00:00Z");
    d.setUTCDate(d.getUTCDate() + days);
    return d.toISOString().slice(0, 10);
  }
  function lastDays(range, days) {
    if (!range || !range.max) return { start: "", end: "" };
    var start = addDays(range.max, -(days - 1));
    if (range.min && start < range.min) start = range.min;
    return { start: start, end: range.max };
  }

  // ---------------------------------------------------------------- page state

  function setState(name) { document.body.dataset.state = name; }

  function showMessage(text, kind) {
    var box = $("#message");
    box.textContent = text;
    box.classList.toggle("info", kind === "info");
    box.hidden = !text;
  }

  function setStatus(text) { $("#status").textContent = text || ""; }

  // ---------------------------------------------------------------- token

  function storeToken(token) {
    memoryToken = token;
    try {
      if (token) window.sessionStorage.setItem(TOKEN_KEY, token);
      else window.sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* storage disabled: the in-memory copy serves this page */ }
  }

  function storedToken() {
    try {
      return window.sessionStorage.getItem(TOKEN_KEY) || memoryToken;
    } catch (e) {
      return memoryToken;
    }
  }

  // The token of ?token=..., moved out of the address bar (and so out of history and
  // bookmarks) into sessionStorage; else the one stored before.
  function takeToken() {
    var url = new URL(window.location.href);
    var fromUrl = url.searchParams.get("token");
    if (fromUrl) {
      storeToken(fromUrl);
      url.searchParams.delete("token");
      window.history.replaceState(null, "", url.pathname + url.search + url.hash);
    }
    return storedToken();
  }

  function showTokenForm(show) {
    $("#token-form").hidden = !show;
    $("#change-token").hidden = show;
    if (show) {
      $("#dashboard").hidden = true;
      $("#token-input").value = "";
      $("#token-input").focus();
    }
  }

  // ---------------------------------------------------------------- API

  function ApiError(status, message) {
    this.name = "ApiError";
    this.status = status;
    this.message = message;
  }
  ApiError.prototype = Object.create(Error.prototype);

  function api(path, params) {
    var url = new URL(path, window.location.origin);
    Object.keys(params || {}).forEach(function (key) {
      var value = params[key];
      if (value !== "" && value !== null && value !== undefined) url.searchParams.set(key, value);
    });
    return fetch(url.toString(), {
      headers: { Authorization: "Bearer " + state.token, Accept: "application/json" },
      cache: "no-store",
    }).then(
      function (response) {
        return response.json().then(
          function (body) { return { response: response, body: body }; },
          function () { return { response: response, body: null }; }
        );
      },
      function (error) {
        throw new ApiError(0, "Cannot reach the server (" + error.message + ").");
      }
    ).then(function (answer) {
      var response = answer.response;
      var body = answer.body;
      if (!response.ok) {
        var message = body && body.error ? body.error : response.status + " " + response.statusText;
        throw new ApiError(response.status, message);
      }
      if (!body) throw new ApiError(response.status, "The server's answer was not JSON.");
      return body;
    });
  }

  function isAuthError(error) { return error && (error.status === 401 || error.status === 403); }

  // The server's message as a sentence: it may lack the final stop.
  function sentence(text) {
    text = String(text || "").trim();
    return /[.!?]$/.test(text) ? text : text + ".";
  }

  function describeError(error) {
    if (!error) return "Unknown error.";
    if (error.status === 401) {
      return "The token was rejected (401 Unauthorized): " + sentence(error.message) + " Enter a valid token.";
    }
    if (error.status === 403) {
      return "This token may not read the dashboard's data (403 Forbidden): " + sentence(error.message) +
        " Use a token with the PIPES:READ scope.";
    }
    if (error.status === 503) {
      var text = "No data to show yet (503): " + sentence(error.message);
      if (!/make demo/.test(error.message)) text += " Build the data first, e.g. with `make demo`.";
      return text;
    }
    if (error.status) return sentence(error.message + " (HTTP " + error.status + ")");
    return error.message || String(error);
  }

  // A load that failed for the whole page: auth errors bring the token form back.
  function fail(error) {
    if (isAuthError(error)) {
      storeToken(null);
      state.token = null;
      showTokenForm(true);
    }
    showMessage(describeError(error));
    setStatus("");
    setState("error");
  }

  // ---------------------------------------------------------------- charts

  function drawChart(canvasId, config) {
    var canvas = document.getElementById(canvasId);
    var existing = window.Chart.getChart(canvas);
    if (existing) existing.destroy();
    return new window.Chart(canvas, config);
  }

  function clearChart(canvasId) {
    var existing = window.Chart.getChart(document.getElementById(canvasId));
    if (existing) existing.destroy();
  }

  function numberTicks() {
    return { callback: function (value) { return numberFormat.format(value); } };
  }

  // ---------------------------------------------------------------- tables

  // rows: the pipe's data; columns: [{value: row => text, num: bool}]
  function fillTable(tableId, rows, columns) {
    var body = $("#" + tableId + " tbody");
    body.textContent = "";
    if (!rows.length) {
      var tr = document.createElement("tr");
      var td = document.createElement("td");
      td.colSpan = columns.length;
      td.className = "empty-row";
      td.textContent = "No rows for these filters.";
      tr.appendChild(td);
      body.appendChild(tr);
      return;
    }
    rows.forEach(function (row) {
      var tr = document.createElement("tr");
      columns.forEach(function (column) {
        var td = document.createElement("td");
        if (column.num) td.className = "num";
        if (column.key) td.dataset.col = column.key;
        td.textContent = column.value(row);
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }

  // ---------------------------------------------------------------- sections

  function section(id) { return document.getElementById(id); }

  function setSectionError(sectionEl, error) {
    var box = $("[data-error]", sectionEl);
    box.textContent = error ? describeError(error) : "";
    box.hidden = !error;
  }

  function setSectionMeta(sectionEl, answer) {
    var meta = $("[data-meta]", sectionEl);
    if (!answer) { meta.textContent = ""; return; }
    var parts = [fmt(answer.rows) + (answer.rows === 1 ? " row" : " rows")];
    if (answer.statistics && answer.statistics.elapsed !== undefined) {
      parts.push(decimalFormat.format(answer.statistics.elapsed * 1000) + " ms");
    }
    meta.textContent = parts.join(" · ");
  }

  function eventParams() {
    return { start_date: $("#filter-start").value, end_date: $("#filter-end").value };
  }

  // DSP reports and the Spotify history cover their own days: unless the user picked dates,
  // show the latest DEFAULT_DAYS days of their own data (rangeKey: their range in /v0/filters;
  // without one the server's defaults apply).
  function ownDates(rangeKey) {
    if (state.datesTouched) return eventParams();
    var range = lastDays(state.filters[rangeKey], DEFAULT_DAYS);
    return { start_date: range.start, end_date: range.end };
  }

  function dateRangeOf(rows, column) {
    var dates = rows.map(function (row) { return row[column]; }).filter(Boolean).sort();
    return dates.length ? { min: dates[0], max: dates[dates.length - 1] } : null;
  }

  function renderTopTracks(answer) {
    var rows = answer.data;
    drawChart("chart-top-tracks", {
      type: "bar",
      data: {
        labels: rows.map(function (r) { return r.track_id; }),
        datasets: [
          { label: "Streams", data: rows.map(function (r) { return r.stream_count; }), backgroundColor: PALETTE[0] },
          { label: "Completed", data: rows.map(function (r) { return r.completed_streams; }), backgroundColor: PALETTE[2] },
        ],
      },
      options: {
        indexAxis: "y",
        scales: { x: { beginAtZero: true, ticks: numberTicks() } },
        plugins: {
          tooltip: {
            callbacks: {
              label: function (c) { return c.dataset.label + ": " + fmt(c.parsed.x); },
              afterBody: function (items) {
                var r = rows[items[0].dataIndex];
                return r ? ["Genre: " + r.genre, "Completion: " + fmtPercent(r.completion_rate)] : [];
              },
            },
          },
        },
      },
    });
    fillTable("table-top-tracks", rows, [
      { key: "rank", num: true, value: function (r) { return fmt(r.rank); } },
      { key: "track_id", value: function (r) { return r.track_id; } },
      { key: "artist_id", value: function (r) { return r.artist_id; } },
      { key: "album_id", value: function (r) { return r.album_id; } },
      { key: "genre", value: function (r) { return r.genre; } },
      { key: "stream_count", num: true, value: function (r) { return fmt(r.stream_count); } },
      { key: "completed_streams", num: true, value: function (r) { return fmt(r.completed_streams); } },
      { key: "completion_rate", num: true, value: function (r) { return fmtPercent(r.completion_rate); } },
      { key: "total_duration_seconds", num: true, value: function (r) { return fmtDuration(r.total_duration_seconds); } },
    ]);
  }

  function renderGenreTrends(answer) {
    var rows = answer.data;
    var dates = [];
    var genres = [];
    var byKey = {};
    rows.forEach(function (r) {
      if (dates.indexOf(r.stream_date) < 0) dates.push(r.stream_date);
      if (genres.indexOf(r.genre) < 0) genres.push(r.genre);
      byKey[r.genre + "|" + r.stream_date] = r;
    });
    dates.sort();
    genres.sort();
    drawChart("chart-genre-trends", {
      type: "line",
      data: {
        labels: dates,
        datasets: genres.map(function (genre, i) {
          var color = PALETTE[i % PALETTE.length];
          return {
            label: genre,
            // No row for a genre on a day: no streams of it that day.
            data: dates.map(function (d) { var r = byKey[genre + "|" + d]; return r ? r.stream_count : 0; }),
            borderColor: color,
            backgroundColor: color,
            tension: 0.2,
            pointRadius: dates.length > 60 ? 0 : 3,
          };
        }),
      },
      options: {
        interaction: { mode: "index", intersect: false },
        scales: { y: { beginAtZero: true, ticks: numberTicks() } },
        plugins: {
          tooltip: {
            callbacks: {
              label: function (c) {
                var r = byKey[c.dataset.label + "|" + c.label];
                var share = r ? " (" + fmtPercent(r.share_of_day_streams) + " of the day)" : "";
                return c.dataset.label + ": " + fmt(c.parsed.y) + share;
              },
            },
          },
        },
      },
    });
  }

  function kpi(label, value) {
    var box = document.createElement("div");
    box.className = "kpi";
    var l = document.createElement("div");
    l.className = "label";
    l.textContent = label;
    var v = document.createElement("div");
    v.className = "value";
    v.textContent = value;
    box.appendChild(l);
    box.appendChild(v);
    return box;
  }

  function renderUserActivity(answer) {
    var rows = answer.data.slice().sort(function (a, b) { return a.stream_date < b.stream_date ? -1 : 1; });
    var sum = function (col) { return rows.reduce(function (t, r) { return t + (Number(r[col]) || 0); }, 0); };
    var streams = sum("stream_count");
    var completed = sum("completed_streams");
    var activeDays = sum("active_users");
    var kpis = $("#kpis");
    kpis.textContent = "";
    kpis.appendChild(kpi("Streams", fmt(streams)));
    kpis.appendChild(kpi("Completion", streams ? fmtPercent(completed / streams) : "–"));
    kpis.appendChild(kpi("Listening hours", fmtDecimal(sum("listening_hours"))));
    kpis.appendChild(kpi("Avg daily users", rows.length ? fmtDecimal(activeDays / rows.length) : "–"));
    kpis.appendChild(kpi("Streams / user", activeDays ? fmtDecimal(streams / activeDays) : "–"));
    drawChart("chart-user-activity", {
      type: "bar",
      data: {
        labels: rows.map(function (r) { return r.stream_date; }),
        datasets: [
          {
            type: "bar", label: "Active users", yAxisID: "y",
            data: rows.map(function (r) { return r.active_users; }), backgroundColor: "#93c5fd",
          },
          {
            type: "line", label: "Streams", yAxisID: "y1",
            data: rows.map(function (r) { return r.stream_count; }),
            borderColor: PALETTE[1], backgroundColor: PALETTE[1], tension: 0.2,
          },
        ],
      },
      options: {
        interaction: { mode: "index", intersect: false },
        scales: {
          y: { beginAtZero: true, position: "left", title: { display: true, text: "Active users" }, ticks: numberTicks() },
          y1: {
            beginAtZero: true, position: "right", grid: { drawOnChartArea: false },
            title: { display: true, text: "Streams" }, ticks: numberTicks(),
          },
        },
        plugins: { tooltip: { callbacks: { label: function (c) { return c.dataset.label + ": " + fmt(c.parsed.y); } } } },
      },
    });
  }

  function dspsShown() {
    var chosen = $("#filter-dsp").value;
    if (chosen) return [chosen];
    var dsps = state.filters.dsps && state.filters.dsps.length ? state.filters.dsps : Object.keys(DSP_NAMES);
    return dsps.filter(function (d) { return DSP_NAMES[d]; });
  }

  function renderTrackPerformance(answer) {
    var rows = answer.data;
    drawChart("chart-dsp", {
      type: "bar",
      data: {
        labels: rows.map(function (r) { return r.track_name || r.isrc; }),
        datasets: dspsShown().map(function (dsp) {
          return {
            label: dspName(dsp),
            data: rows.map(function (r) { return r[dsp + "_streams"]; }),
            backgroundColor: DSP_COLORS[dsp] || PALETTE[0],
          };
        }),
      },
      options: {
        scales: { y: { beginAtZero: true, ticks: numberTicks() } },
        plugins: {
          tooltip: {
            callbacks: {
              label: function (c) { return c.dataset.label + ": " + fmt(c.parsed.y); },
              afterBody: function (items) {
                var r = rows[items[0].dataIndex];
                return r ? ["ISRC: " + r.isrc, "Total: " + fmt(r.total_streams)] : [];
              },
            },
          },
        },
      },
    });
    fillTable("table-track-performance", rows, [
      { key: "rank", num: true, value: function (r) { return fmt(r.rank); } },
      { key: "track_name", value: function (r) { return r.track_name || "–"; } },
      { key: "isrc", value: function (r) { return r.isrc; } },
      { key: "spotify_streams", num: true, value: function (r) { return fmt(r.spotify_streams); } },
      { key: "youtube_streams", num: true, value: function (r) { return fmt(r.youtube_streams); } },
      { key: "apple_music_streams", num: true, value: function (r) { return fmt(r.apple_music_streams); } },
      { key: "total_streams", num: true, value: function (r) { return fmt(r.total_streams); } },
      { key: "days_reporting", num: true, value: function (r) { return fmt(r.days_reporting); } },
    ]);
  }

  function renderDspTopTracks(answer) {
    var dsp = $("#filter-dsp").value;
    $("#dsp-top-label").textContent = dsp ? "on " + dspName(dsp) : "per DSP";
    fillTable("table-dsp-top-tracks", answer.data, [
      { key: "rank", num: true, value: function (r) { return fmt(r.rank); } },
      { key: "dsp", value: function (r) { return dspName(r.dsp); } },
      { key: "track_name", value: function (r) { return r.track_name || "–"; } },
      { key: "isrc", value: function (r) { return r.isrc; } },
      { key: "streams", num: true, value: function (r) { return fmt(r.streams); } },
    ]);
  }

  function renderListening(answer, granularity) {
    var rows = answer.data.slice();
    var label = function (r) {
      return granularity === "hour" ? r.stream_date + " " + String(r.hour_of_day).padStart(2, "0") + ":00" : r.stream_date;
    };
    rows.sort(function (a, b) { return label(a) < label(b) ? -1 : 1; });
    var sectionEl = section("section-listening");
    $("[data-empty]", sectionEl).hidden = rows.length > 0;
    var range = dateRangeOf(rows, "stream_date");
    $("[data-range]", sectionEl).textContent = (state.datesTouched ? "Dates from the filters" : "Latest period of the Spotify history") +
      (range ? ": " + range.min + " – " + range.max + "." : ".");
    if (!rows.length) { clearChart("chart-listening"); return; }
    drawChart("chart-listening", {
      type: "bar",
      data: {
        labels: rows.map(label),
        datasets: [
          {
            type: "bar", label: "Plays", yAxisID: "y",
            data: rows.map(function (r) { return r.plays; }), backgroundColor: "#86efac",
          },
          {
            type: "line", label: "Minutes played", yAxisID: "y1",
            data: rows.map(function (r) { return r.minutes_played; }),
            borderColor: "#15803d", backgroundColor: "#15803d", tension: 0.2,
            pointRadius: rows.length > 60 ? 0 : 3,
          },
        ],
      },
      options: {
        interaction: { mode: "index", intersect: false },
        scales: {
          y: { beginAtZero: true, position: "left", title: { display: true, text: "Plays" }, ticks: numberTicks() },
          y1: {
            beginAtZero: true, position: "right", grid: { drawOnChartArea: false },
            title: { display: true, text: "Minutes" }, ticks: numberTicks(),
          },
        },
        plugins: {
          tooltip: {
            callbacks: {
              label: function (c) {
                return c.dataset.label + ": " + (c.dataset.yAxisID === "y1" ? fmtDecimal(c.parsed.y) : fmt(c.parsed.y));
              },
              afterBody: function (items) {
                var r = rows[items[0].dataIndex];
                return r ? ["Skip rate: " + fmtPercent(r.skip_rate), "Sessions started: " + fmt(r.sessions_started)] : [];
              },
            },
          },
        },
      },
    });
  }

  // Each part: the section it fills, the pipe and its parameters, how to draw the answer.
  function parts() {
    var genre = $("#filter-genre").value;
    var country = $("#filter-country").value;
    var dsp = $("#filter-dsp").value;
    var list = [
      {
        section: "section-top-tracks", pipe: "top_tracks",
        params: Object.assign(eventParams(), { genre: genre, country: country, limit: 10 }),
        render: renderTopTracks,
      },
      {
        section: "section-genre-trends", pipe: "genre_trends",
        params: Object.assign(eventParams(), { genre: genre, country: country }),
        render: renderGenreTrends,
      },
      {
        section: "section-user-activity", pipe: "user_activity",
        params: eventParams(),
        render: renderUserActivity,
      },
    ];
    if (state.filters.dsps && state.filters.dsps.length) {
      list.push({
        section: "section-dsp", pipe: "track_performance",
        params: Object.assign(ownDates("dsp_date_range"), { limit: 10 }),
        render: renderTrackPerformance,
      });
      list.push({
        section: "section-dsp", pipe: "dsp_top_tracks", meta: false,
        params: Object.assign(ownDates("dsp_date_range"), { dsp: dsp, country: country, limit: 10 }),
        render: renderDspTopTracks,
      });
    }
    if (state.filters.has_listening_history) {
      var granularity = $("#listening-granularity").value;
      var params = ownDates("listening_date_range");
      params.granularity = granularity;
      if (granularity === "hour") params.limit = 1000;
      list.push({
        section: "section-listening", pipe: "listening_history", params: params,
        render: function (answer) { renderListening(answer, granularity); },
      });
    }
    return list;
  }

  function describeDspRange() {
    var note = $("[data-range]", section("section-dsp"));
    var dsps = state.filters.dsps || [];
    if (!dsps.length) { note.textContent = ""; return; }
    var names = dsps.map(dspName).join(", ");
    if (state.datesTouched) {
      note.textContent = "Reports of " + names + " for the dates of the filters.";
    } else {
      var range = lastDays(state.filters.dsp_date_range, DEFAULT_DAYS);
      note.textContent = "Reports of " + names + (range.end ? ", " + range.start + " – " + range.end +
        " (the latest " + DEFAULT_DAYS + " days of DSP data)." : ".");
    }
  }

  // Fetch every section in parallel and draw each answer as it comes.
  function loadAll() {
    var generation = ++state.generation;
    setState(state.loads ? "refreshing" : "loading");
    setStatus("Loading…");
    describeDspRange();
    var failedSections = {};
    var list = parts();
    var jobs = list.map(function (part) {
      return api("/v0/pipes/" + part.pipe + ".json", part.params).then(
        function (answer) {
          if (generation !== state.generation) return null;
          var sectionEl = section(part.section);
          if (!failedSections[part.section]) setSectionError(sectionEl, null);
          if (part.meta !== false) setSectionMeta(sectionEl, answer);
          part.render(answer);
          return null;
        },
        function (error) {
          if (generation !== state.generation) return null;
          failedSections[part.section] = true;
          var sectionEl = section(part.section);
          setSectionError(sectionEl, error);
          setSectionMeta(sectionEl, null);
          return { part: part, error: error };
        }
      );
    });
    return Promise.all(jobs).then(function (results) {
      if (generation !== state.generation) return;
      state.loads += 1;
      document.body.dataset.loads = String(state.loads);
      var errors = results.filter(Boolean);
      var authError = errors.filter(function (e) { return isAuthError(e.error); })[0];
      if (authError) { fail(authError.error); return; }
      if (errors.length && errors.every(function (e) { return e.error.status === 503; })) {
        showMessage(describeError(errors[0].error)); // nothing exported yet: say it once
        setStatus("");
        setState("error");
        return;
      }
      if (errors.length) {
        showMessage("Some sections could not be loaded: " + errors.map(function (e) {
          return e.part.pipe + ": " + describeError(e.error);
        }).join(" · "));
        setStatus("");
        setState("error");
        return;
      }
      showMessage("");
      setStatus("Updated " + new Date().toLocaleTimeString());
      setState("ready");
    });
  }

  // ---------------------------------------------------------------- filters

  function fillSelect(selectEl, values, label) {
    var keep = selectEl.value;
    selectEl.textContent = "";
    var all = document.createElement("option");
    all.value = "";
    all.textContent = "All";
    selectEl.appendChild(all);
    (values || []).forEach(function (value) {
      var option = document.createElement("option");
      option.value = value;
      option.textContent = label ? label(value) : value;
      selectEl.appendChild(option);
    });
    if ((values || []).indexOf(keep) >= 0) selectEl.value = keep;
  }

  function defaultDates() {
    var range = lastDays(state.filters.date_range, DEFAULT_DAYS);
    $("#filter-start").value = range.start;
    $("#filter-end").value = range.end;
    state.datesTouched = false;
    var note = $("#filters-note");
    if (state.filters.date_range) {
      note.textContent = "Streaming events from " + state.filters.date_range.min + " to " +
        state.filters.date_range.max + ".";
    } else {
      note.textContent = "No streaming events yet.";
    }
  }

  function applyFilters(filters) {
    state.filters = filters;
    fillSelect($("#filter-genre"), filters.genres);
    fillSelect($("#filter-country"), filters.countries);
    fillSelect($("#filter-dsp"), filters.dsps, dspName);
    $("#filter-dsp").disabled = !(filters.dsps && filters.dsps.length);
    defaultDates();
    var hasDsp = filters.dsps && filters.dsps.length;
    var dspSection = section("section-dsp");
    $("[data-empty]", dspSection).hidden = !!hasDsp;
    $(".chart-box", dspSection).hidden = !hasDsp;
    $(".split", dspSection).hidden = !hasDsp;
    section("section-listening").hidden = !filters.has_listening_history;
  }

  function bindControls() {
    ["#filter-genre", "#filter-country", "#filter-dsp", "#listening-granularity"].forEach(function (sel) {
      $(sel).addEventListener("change", function () { loadAll(); });
    });
    ["#filter-start", "#filter-end"].forEach(function (sel) {
      $(sel).addEventListener("change", function () {
        state.datesTouched = true;
        loadAll();
      });
    });
    $("#filter-reset").addEventListener("click", function () {
      $("#filter-genre").value = "";
      $("#filter-country").value = "";
      $("#filter-dsp").value = "";
      defaultDates();
      loadAll();
    });
    $("#filters").addEventListener("submit", function (event) { event.preventDefault(); loadAll(); });
    $("#token-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var token = $("#token-input").value.trim();
      if (!token) return;
      storeToken(token);
      start();
    });
    $("#change-token").addEventListener("click", function () {
      storeToken(null);
      state.token = null;
      state.generation += 1; // drop the answers still on their way
      showMessage("");
      setStatus("");
      showTokenForm(true);
      setState("token");
    });
  }

  // ---------------------------------------------------------------- start

  function start() {
    state.token = storedToken();
    if (!state.token) {
      showTokenForm(true);
      setState("token");
      return;
    }
    showTokenForm(false);
    showMessage("");
    setState("loading");
    setStatus("Loading…");
    var generation = ++state.generation;
    api("/v0/filters").then(
      function (filters) {
        if (generation !== state.generation) return null;
        applyFilters(filters);
        $("#dashboard").hidden = false;
        return loadAll();
      },
      function (error) {
        if (generation === state.generation) fail(error);
      }
    ).catch(function (error) {
      // A bug of this page while drawing: show it rather than hang in "loading".
      showMessage("The dashboard failed: " + (error && error.message ? error.message : error));
      setState("error");
      throw error;
    });
  }

  function init() {
    if (!window.Chart) {
      showMessage("Chart.js did not load (/static/vendor/chart.umd.min.js).");
      setState("error");
      return;
    }
    window.Chart.defaults.animation = false; // deterministic drawing (and tests)
    window.Chart.defaults.responsive = true;
    window.Chart.defaults.maintainAspectRatio = false;
    window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    bindControls();
    takeToken();
    start();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
