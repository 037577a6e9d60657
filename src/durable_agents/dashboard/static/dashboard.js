// durable-agents dashboard: toasts, copy buttons, open <details> kept across live refreshes, and
// the live token stream of an agent reply (Server-Sent Events, resumed by the browser on reconnect).
(function () {
  "use strict";

  function toast(message, level) {
    var box = document.getElementById("toasts");
    if (!box || !message) return;
    var item = document.createElement("div");
    item.className = "toast toast-" + (level || "ok");
    item.setAttribute("role", level === "error" ? "alert" : "status");
    item.textContent = message;
    box.appendChild(item);
    setTimeout(function () { item.classList.add("toast-out"); }, 3600);
    setTimeout(function () { item.remove(); }, 4000);
  }

  document.addEventListener("toast", function (event) {
    var detail = event.detail || {};
    toast(detail.message, detail.level);
    // Refresh the live part of the page at once rather than at the next poll.
    document.body.dispatchEvent(new CustomEvent("refresh"));
  });

  // Polls pause while the tab is hidden. (A trigger filter would say so, but htmx evaluates filters as
  // JavaScript, which the page's Content-Security-Policy forbids.)
  document.addEventListener("htmx:beforeRequest", function (event) {
    var element = event.detail.elt;
    if (document.visibilityState !== "visible" && element && element.hasAttribute("data-poll")) {
      event.preventDefault();
    }
  });

  // Live refreshes fail quietly after the first toast, until one succeeds again.
  var offline = false;
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    if (xhr.status === 401) return; // htmx follows HX-Redirect to the sign-in page
    var polling = event.detail.requestConfig && event.detail.requestConfig.verb === "get";
    if (polling && offline) return;
    offline = polling;
    var text = (xhr.responseText || "").trim();
    toast(text && text.length < 400 ? text : "The server answered " + xhr.status + ".", "error");
  });
  document.addEventListener("htmx:sendError", function () {
    if (!offline) toast("Cannot reach the server; retrying.", "error");
    offline = true;
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail.successful) offline = false;
  });

  // A live refresh replaces the markup; keep the sections a person opened open.
  var opened = [];
  document.addEventListener("htmx:beforeSwap", function () {
    opened = Array.prototype.map.call(document.querySelectorAll("details[open][id]"), function (d) { return d.id; });
  });
  document.addEventListener("htmx:afterSettle", function () {
    opened.forEach(function (id) {
      var element = document.getElementById(id);
      if (element) element.open = true;
    });
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var text = button.getAttribute("data-copy");
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { toast("Copied"); });
    } else {
      var area = document.createElement("textarea");
      area.value = text;
      document.body.appendChild(area);
      area.select();
      document.execCommand("copy");
      area.remove();
      toast("Copied");
    }
  });

  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-autosubmit]")) event.target.form.requestSubmit();
  });

  function setState(state, label, style) {
    var badge = document.getElementById("stream-state");
    if (!badge) return;
    badge.className = "badge badge-" + style;
    badge.setAttribute("data-state", state);
    badge.lastChild.textContent = label;
  }

  function follow(target) {
    var note = document.getElementById("stream-note");
    var caret = document.getElementById("stream-caret");
    var source = new EventSource(target.getAttribute("data-stream-url"));
    var chunks = 0;

    function finish(state, label, style, message) {
      source.close();
      document.body.dispatchEvent(new CustomEvent("streamdone"));
      setState(state, label, style);
      if (caret) caret.remove();
      if (note) note.textContent = message;
    }

    source.addEventListener("chunk", function (event) {
      var data = JSON.parse(event.data);
      if (chunks === 0) {
        setState("streaming", "Streaming", "running");
        document.body.dispatchEvent(new CustomEvent("streamstart")); // the header learns who answers
      }
      chunks += 1;
      target.appendChild(document.createTextNode(data.text));
      if (note) note.textContent = chunks + " chunk" + (chunks === 1 ? "" : "s") + " received";
    });
    source.addEventListener("restart", function () {
      target.textContent = "";
      chunks = 0;
      if (note) note.textContent = "The model call was retried; the reply starts over.";
    });
    source.addEventListener("complete", function () {
      finish("complete", "Complete", "completed", "Complete · " + chunks + " chunk" + (chunks === 1 ? "" : "s"));
    });
    source.addEventListener("failed", function (event) {
      finish("failed", "Failed", "failed", "The turn failed: " + JSON.parse(event.data).message);
    });
    source.addEventListener("missing", function (event) {
      finish("missing", "Not found", "terminated", JSON.parse(event.data).message);
    });
    source.addEventListener("unavailable", function (event) {
      finish("unavailable", "Unavailable", "failed", JSON.parse(event.data).message + " Reload the page to try again.");
    });
    source.onerror = function () {
      if (source.readyState !== EventSource.CLOSED) {
        if (note) note.textContent = "Reconnecting…";
      } else {
        // The server refused the stream (a service down, no such reply): the browser will not retry.
        finish("unavailable", "Unavailable", "failed", "The reply could not be followed. Reload the page to try again.");
      }
    };
  }

  document.addEventListener("DOMContentLoaded", function () {
    var target = document.querySelector("[data-stream-url]");
    if (target && window.EventSource) follow(target);
  });
})();
