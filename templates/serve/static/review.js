// The grading pages. The index: its progress bars. A question's page: rubric items as buttons and
// keys (1-9 toggle an item on the selected answer group and save it at once; g marks it graded as
// is; j/k move; c writes a comment, Esc saves it). Enter and Space are the browser's: they activate
// the focused button, link or summary, never grade. A click on a rubric button leaves the focus on
// it (a second Space toggles it back). A save names the versions the page was rendered with; a 409
// (someone else graded it meanwhile, or the student handed in again) reloads the page at that
// answer, says why, and puts the grader's items and comment back, unsaved. Served from /static:
// the Content-Security-Policy allows no inline script.
(function () {
  "use strict";
  document.querySelectorAll(".progress .bar").forEach(function (bar) {
    var total = parseFloat(bar.getAttribute("data-total"));
    bar.style.width = (total ? 100 * parseFloat(bar.getAttribute("data-done")) / total : 0) + "%";
  });
  var root = document.querySelector(".review[data-grade-url]");
  if (!root) { return; }
  var url = root.getAttribute("data-grade-url");
  var csrf = root.getAttribute("data-csrf");
  var points = parseFloat(root.getAttribute("data-points"));
  var groups = Array.prototype.slice.call(document.querySelectorAll(".answer-group"));
  var rubric = Array.prototype.slice.call(document.querySelectorAll(".rubric-item")).map(function (li) {
    return li.getAttribute("data-item");
  });
  var flash = document.querySelector("[data-flash]");
  var current = 0;

  function items(group) {
    var text = group.getAttribute("data-items");
    return text ? text.split(",") : [];
  }

  function select(index, keepFocus) {
    if (!groups.length) { return; }
    current = Math.max(0, Math.min(groups.length - 1, index));
    groups.forEach(function (g, i) { g.classList.toggle("selected", i === current); });
    if (keepFocus) { return; }
    groups[current].focus({ preventScroll: true });
    groups[current].scrollIntoView({ block: "nearest" });
  }

  var STASH = "gradelab-review-stale:" + url;

  function setItems(group, now) {
    group.setAttribute("data-items", now.join(","));
    group.querySelectorAll("[data-toggle]").forEach(function (b) {
      var on = now.indexOf(b.getAttribute("data-toggle")) >= 0;
      b.classList.toggle("on", on);
      b.setAttribute("aria-pressed", on ? "true" : "false");
    });
  }

  function say(text) {
    flash.textContent = text;
    flash.hidden = !text;
  }

  // Saves of one group go one after the other: each names the version the previous one returned
  // (two keys pressed fast would otherwise both send the same version, and the second get a 409).
  var chains = new WeakMap();

  function save(group) {
    var next = (chains.get(group) || Promise.resolve()).then(function () { return send(group); });
    chains.set(group, next);
    return next;
  }

  function send(group) {
    var body = new URLSearchParams();
    body.append("csrf", csrf);
    group.querySelectorAll(".member").forEach(function (m) {
      body.append("key", m.getAttribute("data-key"));
      body.append("version", m.getAttribute("data-version"));
      body.append("sha", m.getAttribute("data-sha"));
    });
    items(group).forEach(function (id) { body.append("item", id); });
    body.append("comment", group.querySelector("[data-comment]").value);
    group.classList.add("saving");
    return fetch(url, { method: "POST", body: body, credentials: "same-origin",
                        headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (response.status === 409) {
          return response.json().catch(function () { return {}; }).then(function (refusal) {
            try {
              window.sessionStorage.setItem(STASH, JSON.stringify({
                group: group.id, items: items(group), comment: group.querySelector("[data-comment]").value,
                error: refusal.error || "This grade was refused: the answer changed since the page was shown."
              }));
            } catch (err) { /* no storage: the message below is all there is */ }
            say((refusal.error || "This grade was refused.") + " Reloading…");
            window.location.hash = group.id;
            window.location.reload();
            return null;
          });
        }
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.json();
      })
      .then(function (answer) {
        group.classList.remove("saving");
        if (!answer) { return; }
        group.querySelectorAll(".member").forEach(function (m) {
          var v = answer.versions[m.getAttribute("data-key")];
          if (v !== undefined) { m.setAttribute("data-version", String(v)); }
        });
        group.classList.add("graded");
        group.querySelector("[data-score]").textContent = answer.score + " / " + points;
        document.querySelectorAll("[data-graded]").forEach(function (el) { el.textContent = answer.graded; });
        document.querySelectorAll(".question-progress .bar").forEach(function (bar) {
          bar.setAttribute("data-done", answer.graded);
          bar.style.width = (answer.total ? 100 * answer.graded / answer.total : 0) + "%";
        });
        say("");
      })
      .catch(function () {
        group.classList.remove("saving");
        say("Not saved: the server did not answer. Try again.");
      });
  }

  function toggle(group, id) {
    var now = items(group);
    var at = now.indexOf(id);
    if (at >= 0) { now.splice(at, 1); } else { now.push(id); }
    setItems(group, now);
    group.classList.remove("unsaved");
    return save(group);
  }

  function control(el) {
    return !!(el && el.closest && el.closest("a, button, summary, input, textarea, select, label, details form"));
  }

  groups.forEach(function (group, i) {
    group.addEventListener("click", function (e) { if (current !== i) { select(i, control(e.target)); } });
    group.querySelectorAll("[data-toggle]").forEach(function (b) {
      b.addEventListener("click", function () { select(i, true); toggle(group, b.getAttribute("data-toggle")); });
    });
    var box = group.querySelector("[data-comment]");
    box.addEventListener("keydown", function (e) {
      if (e.key === "Escape") { e.preventDefault(); box.blur(); group.focus({ preventScroll: true }); }
    });
    box.addEventListener("change", function () { save(group); });
  });

  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    if (t && (t.tagName === "TEXTAREA" || t.tagName === "INPUT" || t.tagName === "SELECT")) { return; }
    if (e.key === "Enter" || e.key === " ") { return; }  // the browser's: activate what has the focus
    if (!groups.length) { return; }
    var group = groups[current];
    if (e.key === "j") { e.preventDefault(); select(current + 1); }
    else if (e.key === "k") { e.preventDefault(); select(current - 1); }
    else if (e.key === "c") { e.preventDefault(); group.querySelector("[data-comment]").focus(); }
    else if (e.key === "g") { e.preventDefault(); group.classList.remove("unsaved"); save(group); }
    else if (/^[1-9]$/.test(e.key)) {
      var id = rubric[parseInt(e.key, 10) - 1];
      if (id) { e.preventDefault(); toggle(group, id); }
    }
  });

  var stale = null;
  try { stale = JSON.parse(window.sessionStorage.getItem(STASH) || "null"); } catch (err) { stale = null; }
  if (stale) {
    window.sessionStorage.removeItem(STASH);
    var back = document.getElementById(stale.group);
    if (back) {
      setItems(back, stale.items || []);
      back.querySelector("[data-comment]").value = stale.comment || "";
      back.classList.add("unsaved");
    }
    say(stale.error + " Your items and comment are back on the answer, not saved: read the grade now "
        + "shown, then press a rubric key or g to save yours.");
  }
  var start = window.location.hash ? groups.indexOf(document.querySelector(window.location.hash)) : -1;
  select(start >= 0 ? start : Math.max(0, groups.findIndex(function (g) { return !g.classList.contains("graded"); })));
}());
