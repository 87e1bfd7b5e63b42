// Tollgate console: the only script. Everything works without it; it adds live refresh of
// the figures marked `data-live`, copy buttons, and confirmations before destructive posts.
(function () {
  "use strict";

  var REFRESH_MS = 5000;

  // Re-fetches this page and swaps in the fresh copy of every element marked data-live
  // (by id). Pauses while the tab is hidden or a field of the page has focus.
  function refresh() {
    var live = document.querySelectorAll("[data-live][id]");
    if (live.length === 0 || document.hidden) return;
    var active = document.activeElement;
    if (active && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName)) return;
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (response.redirected || !response.ok) return null;
        return response.text();
      })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html");
        live.forEach(function (element) {
          var replacement = fresh.getElementById(element.id);
          if (replacement) element.replaceWith(document.importNode(replacement, true));
        });
        document.body.dataset.refreshed = String(Date.now());
      })
      .catch(function () { /* the next tick tries again */ });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) return;
    var text = source.textContent;
    var done = function () { button.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { select(source); });
    } else {
      select(source);
      try { if (document.execCommand("copy")) done(); } catch (e) { /* selected: copy by hand */ }
    }
  });

  function select(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    var replace = form.querySelector("input[name=replace]");
    if (!question && replace && replace.checked) {
      question = "Replace the whole config? Objects missing from the text are deleted.";
    }
    if (question && !window.confirm(question)) event.preventDefault();
  });

  window.setInterval(refresh, REFRESH_MS);
})();
