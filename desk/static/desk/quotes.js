/* The desk's live quotes panel: /ws/market-data (docs/streaming.md), plain JavaScript, no library, no CDN.
   Subscribes to the table's symbols, fills bid/ask/sizes/last trade, re-connects with backoff. */
(function () {
  "use strict";
  var table = document.getElementById("quotes-table");
  if (!table) { return; }
  var status = document.getElementById("quotes-status");
  var rows = {};
  table.querySelectorAll("tbody tr[data-symbol]").forEach(function (row) { rows[row.dataset.symbol] = row; });
  var symbols = Object.keys(rows);
  var delay = 500;

  function setStatus(text, cls) { status.textContent = text; status.className = cls; }
  function money(value, places) {
    if (value === null || value === undefined) { return "—"; }
    var n = Number(value);
    return "$" + n.toLocaleString("en-US", {minimumFractionDigits: places, maximumFractionDigits: places});
  }
  function priceText(value) { return money(value, Math.abs(Number(value)) >= 1 ? 2 : 4); }
  function utcMs(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) { return iso || "—"; }
    return d.toISOString().replace("T", " ").replace("Z", " UTC");  // 2026-11-29 06:56:12.345 UTC
  }
  function cell(row, cls, text) { row.querySelector("." + cls).textContent = text; }

  function connect() {
    var url = table.dataset.url + (table.dataset.token ? "?token=" + encodeURIComponent(table.dataset.token) : "");
    var ws;
    try { ws = new WebSocket(url); } catch (e) { setStatus("cannot connect: " + e.message, "console-bad"); return; }
    ws.onopen = function () {
      delay = 500;
      ws.send(JSON.stringify({type: "subscribe", symbols: symbols}));
    };
    ws.onmessage = function (event) {
      var msg = JSON.parse(event.data);
      var row = msg.symbol && rows[msg.symbol];
      if (msg.type === "subscription_update") {
        var rejected = (msg.rejected_symbols || []).map(function (r) { return r.symbol + " (" + r.reason + ")"; });
        setStatus("live, " + msg.total_subscribed + " symbols" + (rejected.length ? "; refused: " + rejected.join(", ") : ""), "console-ok");
      } else if (msg.type === "quote" && row) {
        cell(row, "bid", priceText(msg.bid_price)); cell(row, "ask", priceText(msg.ask_price));
        cell(row, "bid-size", String(msg.bid_size)); cell(row, "ask-size", String(msg.ask_size));
        cell(row, "at", utcMs(msg.timestamp)); row.classList.add("quoted");
      } else if (msg.type === "trade" && row) {
        cell(row, "last", priceText(msg.price));
      } else if (msg.type === "error") {
        setStatus(msg.message, "console-bad");
      }
    };
    ws.onclose = function (event) {
      setStatus("disconnected" + (event.reason ? " (" + event.reason + ")" : "") + "; retrying", "console-warn");
      if (event.code === 4001 || event.code === 4003) { setStatus("refused: " + event.reason + " (reload the page)", "console-bad"); return; }
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  connect();
}());
