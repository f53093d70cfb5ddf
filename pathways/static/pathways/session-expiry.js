// Automatic logoff warning (pathways/web/session_expiry.py). The server ends an idle session on its own; this
// only tells the person before it happens and lets them stay signed in. Any request the page makes (a click,
// an htmx swap) is activity, so each one restarts the countdown.
(function () {
  "use strict";
  var body = document.body;
  var idle = parseInt(body.getAttribute("data-session-idle-seconds"), 10);
  var warn = parseInt(body.getAttribute("data-session-warning-seconds"), 10);
  var box = document.getElementById("session-warning");
  if (!idle || !box) { return; }
  var left = document.getElementById("session-warning-left");
  var stay = document.getElementById("session-stay");
  var deadline = 0;
  var timer = null;

  function restart() {
    deadline = Date.now() + idle * 1000;
    box.hidden = true;
  }
  function tick() {
    var remaining = Math.round((deadline - Date.now()) / 1000);
    if (remaining <= 0) {
      window.clearInterval(timer);
      window.location.assign(body.getAttribute("data-session-login-url") + "?expired=idle&next=" +
        encodeURIComponent(window.location.pathname + window.location.search));
      return;
    }
    if (remaining <= warn) {
      left.textContent = remaining >= 60 ? Math.ceil(remaining / 60) + " minute" + (remaining > 60 ? "s" : "") :
        remaining + " seconds";
      if (box.hidden) { box.hidden = false; stay.focus(); }
    }
  }
  stay.addEventListener("click", function () {
    var token = document.querySelector("[name=csrfmiddlewaretoken]");
    fetch(body.getAttribute("data-session-keepalive-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: {"X-CSRFToken": token ? token.value : ""}
    }).then(function (response) {
      if (response.ok) { restart(); } else { deadline = 0; tick(); }
    });
  });
  document.body.addEventListener("htmx:afterRequest", restart);
  restart();
  timer = window.setInterval(tick, 1000);
}());
