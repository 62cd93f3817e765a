// The console's only script: refresh each page's live part, and ask before a destructive form.
"use strict";
(function () {
  var REFRESH_MS = 2000;
  function refresh() {
    var live = document.querySelector("[data-live]");
    if (!live || document.hidden) { return; }
    var url = new URL(window.location.href);
    url.searchParams.set("part", "live");
    fetch(url, {credentials: "same-origin", cache: "no-store"}).then(function (r) {
      if (r.redirected || !r.ok) { return null; }  // logged out or gone: leave the page as it is
      return r.text();
    }).then(function (html) {
      if (html !== null && html !== undefined && live.innerHTML !== html) { live.innerHTML = html; }
    }).catch(function () {});
  }
  window.setInterval(refresh, REFRESH_MS);
  document.addEventListener("submit", function (e) {
    var text = e.target.getAttribute("data-confirm");
    if (text && !window.confirm(text)) { e.preventDefault(); }
  });
})();
