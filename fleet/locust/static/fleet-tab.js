/* The Fleet tab's charts (chargepro-fleet, see fleet/locust/webui.py).
 *
 * Locust's React UI renders an extension tab as a table only. While the Fleet tab is
 * shown, this script keeps a box above that table filled with the charts the server
 * draws (inline SVG from /fleet/charts, refreshed every two seconds like Locust's own
 * stats), and takes the box away when another tab is shown. No library, no network
 * beyond the Locust server itself.
 */
(function () {
  "use strict";
  var CHARTS = new URL("../charts", document.currentScript.src).href;
  var EVERY = 2000;
  var box = null;
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
      .then(function (html) { if (box) box.innerHTML = html; })
      .catch(function () { /* the next tick tries again */ })
      .then(function () { busy = false; });
  }

  function tick() {
    var anchor = onFleetTab() ? table() : null;
    if (!anchor) {
      if (box) { box.remove(); box = null; }
      return;
    }
    if (!box || box.nextElementSibling !== anchor) {
      if (box) box.remove();
      box = document.createElement("div");
      box.id = "fleet-charts";
      box.style.margin = "0 0 16px";
      anchor.parentNode.insertBefore(box, anchor);
      lastFetch = 0;
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
