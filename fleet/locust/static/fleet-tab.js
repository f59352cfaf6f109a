/* The Fleet tab's charts (chargepro-fleet, see fleet/locust/webui.py).
 *
 * Locust's React UI renders an extension tab as a table only. While the Fleet tab is
 * shown, this script keeps a box above that table filled with the charts the server
 * draws (inline SVG from /fleet/charts, refreshed every two seconds like Locust's own
 * stats), and takes the box away when another tab is shown. Pointing at a chart shows
 * the values at that time, as Locust's charts do. No library, no network beyond the
 * Locust server itself.
 */
(function () {
  "use strict";
  var CHARTS = new URL("../charts", document.currentScript.src).href;
  var EVERY = 2000;
  var box = null;
  var content = null;
  var tip = null;
  var busy = false;
  var lastFetch = 0;

  function onFleetTab() {
    return new URLSearchParams(window.location.search).get("tab") === "fleet";
  }

  function table() {
    var t = document.querySelector("#root table");
    return t && (t.closest(".MuiTableContainer-root") || t);
  }

  function refresh() {
    if (busy) return;
    busy = true;
    lastFetch = Date.now();
    fetch(CHARTS, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) { if (content) content.innerHTML = html; })
      .catch(function () { /* the next tick tries again */ })
      .then(function () { busy = false; });
  }

  function text(tag, value, color) {
    var el = document.createElement(tag);
    el.textContent = value;
    if (color) el.style.color = color;
    return el;
  }

  function point(event) {
    var svg = event.target.closest && event.target.closest("svg.fleet-chart");
    var data = svg && JSON.parse(svg.getAttribute("data-tip") || "null");
    if (!data || !data.x.length) { tip.style.display = "none"; return; }
    var m = svg.getScreenCTM();
    var x = (event.clientX - m.e) / m.a; // the pointer in the chart's own units
    var i = 0;
    for (var k = 1; k < data.x.length; k++) {
      if (Math.abs(data.x[k] - x) < Math.abs(data.x[i] - x)) i = k;
    }
    tip.replaceChildren(text("b", data.time[i]));
    data.series.forEach(function (s) {
      var v = s.values[i];
      tip.appendChild(document.createElement("br"));
      tip.appendChild(text("span", "\u25cf ", s.color));
      tip.appendChild(text("span", s.name + ": " + (v === null ? "-" : v.toLocaleString())));
    });
    var area = box.getBoundingClientRect();
    tip.style.display = "block";
    tip.style.left = Math.min(event.clientX - area.left + 16, area.width - tip.offsetWidth) + "px";
    tip.style.top = event.clientY - area.top + 16 + "px";
  }

  function build(anchor) {
    box = document.createElement("div");
    box.id = "fleet-charts";
    box.style.cssText = "position:relative;margin:0 0 16px";
    content = document.createElement("div");
    tip = document.createElement("div");
    tip.className = "fleet-tooltip";
    tip.style.cssText =
      "position:absolute;display:none;pointer-events:none;padding:6px 10px;font-size:13px;" +
      "border-radius:4px;box-shadow:0 2px 8px rgba(0,0,0,.3);white-space:nowrap;" +
      "background:" + getComputedStyle(document.body).backgroundColor;
    box.appendChild(content);
    box.appendChild(tip);
    box.addEventListener("mousemove", point);
    box.addEventListener("mouseleave", function () { tip.style.display = "none"; });
    anchor.parentNode.insertBefore(box, anchor);
    lastFetch = 0;
  }

  function tick() {
    var anchor = onFleetTab() ? table() : null;
    if (!anchor) {
      if (box) { box.remove(); box = null; }
      return;
    }
    if (!box || box.nextElementSibling !== anchor) {
      if (box) box.remove();
      build(anchor);
    }
    if (Date.now() - lastFetch >= EVERY && !document.hidden) refresh();
  }

  // React re-renders the tab at will: re-check on every change, and on a timer for
  // the refresh itself.
  new MutationObserver(tick).observe(document.getElementById("root") || document.body, {
    childList: true,
    subtree: true,
  });
  setInterval(tick, 500);
  tick();
})();
