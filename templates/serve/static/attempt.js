// The waiting page of an attempt: asks the server for the attempt's state every few seconds,
// shows its place in the queue, and reloads the page when the feedback is in. Served from
// /static (the Content-Security-Policy allows no inline script).
(function () {
  "use strict";
  var box = document.querySelector("[data-status-url]");
  if (!box) { return; }
  var url = box.getAttribute("data-status-url");
  var every = parseInt(box.getAttribute("data-poll-ms"), 10) || 1500;
  var stateText = box.querySelector("[data-state-text]");
  var positionText = box.querySelector("[data-position-text]");

  function show(status) {
    if (status.state === "done") {
      window.location.reload();
      return true;
    }
    if (status.state === "grading") {
      stateText.textContent = "Being graded now";
      positionText.textContent = "Every check runs in a sandbox; this takes seconds to a few minutes.";
    } else if (status.position) {
      stateText.textContent = "In the queue";
      positionText.textContent = "Position " + status.position + " in the queue.";
    }
    return false;
  }

  function poll() {
    fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (response.status === 401) { window.location.assign("/login"); return null; }
        return response.ok ? response.json() : null;
      })
      .then(function (status) {
        if (!status || !show(status)) { window.setTimeout(poll, every); }
      })
      .catch(function () { window.setTimeout(poll, every * 2); });
  }
  window.setTimeout(poll, every);
}());
