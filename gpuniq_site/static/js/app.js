/* The console's small amount of plain JS: theme toggle, copy buttons, dialogs, tabs, htmx
   confirmations and keyboard shortcuts. Pages work without it (forms post, links navigate). */
(function () {
  "use strict";
  var root = document.documentElement;

  function setTheme(theme) {
    root.setAttribute("data-theme", theme);
    try { localStorage.setItem("gpuniq-theme", theme); } catch (e) { /* ignore */ }
  }
  function toggleTheme() { setTheme(root.getAttribute("data-theme") === "dark" ? "light" : "dark"); }

  function copyText(text, button) {
    function done() {
      if (!button) return;
      var label = button.querySelector("[data-copy-label]");
      button.classList.add("copied");
      if (label) { label.dataset.was = label.dataset.was || label.textContent; label.textContent = "Copied"; }
      setTimeout(function () {
        button.classList.remove("copied");
        if (label) label.textContent = label.dataset.was;
      }, 1600);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text); done(); });
    } else { fallbackCopy(text); done(); }
  }
  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text; area.setAttribute("readonly", ""); area.style.position = "fixed"; area.style.opacity = "0";
    document.body.appendChild(area); area.select();
    try { document.execCommand("copy"); } catch (e) { /* nothing else to try */ }
    document.body.removeChild(area);
  }

  /* A dialog remembers what opened it and gives focus back there when it closes. */
  function openDialog(id, opener) {
    var dialog = document.getElementById(id);
    if (dialog && !dialog.open) {
      dialog.gpuniqOpener = opener || document.activeElement;
      dialog.showModal();
    }
    return dialog;
  }

  function confirmWith(question, onOk) {
    var dialog = document.getElementById("confirm-dialog");
    if (!dialog || !dialog.showModal) { if (window.confirm(question)) onOk(); return; }
    dialog.querySelector("[data-confirm-text]").textContent = question;
    dialog.returnValue = "";
    dialog.addEventListener("close", function handler() {
      dialog.removeEventListener("close", handler);
      if (dialog.returnValue === "ok") onOk();
    });
    dialog.showModal();
  }

  function activateTab(button) {
    var list = button.closest("[role=tablist]");
    list.querySelectorAll("[role=tab]").forEach(function (tab) {
      var selected = tab === button;
      tab.setAttribute("aria-selected", selected ? "true" : "false");
      tab.tabIndex = selected ? 0 : -1;
      var panel = document.getElementById(tab.getAttribute("aria-controls"));
      if (panel) panel.hidden = !selected;
    });
  }

  /* Links that carry the page's current filters (htmx pushes them into the address bar). */
  document.addEventListener("click", function (event) {
    var link = event.target.closest("a[data-keep-query]");
    if (link) link.href = link.href.split("?")[0] + window.location.search;
  }, true);

  document.addEventListener("click", function (event) {
    var el = event.target.closest("[data-theme-toggle],[data-copy],[data-open-dialog],[data-close-dialog],[data-dismiss],[data-toggle-nav],[role=tab]");
    if (!el) return;
    if (el.hasAttribute("data-theme-toggle")) toggleTheme();
    else if (el.hasAttribute("data-copy")) {
      var target = el.getAttribute("data-copy");
      var source = target ? document.querySelector(target) : null;
      copyText(source ? source.textContent.trim() : el.getAttribute("data-copy-text") || "", el);
    } else if (el.hasAttribute("data-open-dialog")) {
      if (openDialog(el.getAttribute("data-open-dialog"), el)) event.preventDefault();  /* links work without JS */
    } else if (el.hasAttribute("data-close-dialog")) {
      var d = el.closest("dialog");
      if (d) { event.preventDefault(); d.close(); }
    }
    else if (el.hasAttribute("data-dismiss")) { var t = el.closest("[data-toast]"); if (t) t.remove(); }
    else if (el.hasAttribute("data-toggle-nav")) {
      var sidebar = document.getElementById("sidebar");
      var open = sidebar.classList.toggle("open");
      el.setAttribute("aria-expanded", open ? "true" : "false");
    } else if (el.getAttribute("role") === "tab") activateTab(el);
  });

  document.addEventListener("keydown", function (event) {
    var tab = event.target.closest && event.target.closest("[role=tab]");
    if (tab && (event.key === "ArrowRight" || event.key === "ArrowLeft")) {
      var tabs = Array.prototype.slice.call(tab.closest("[role=tablist]").querySelectorAll("[role=tab]"));
      var next = tabs[(tabs.indexOf(tab) + (event.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
      activateTab(next); next.focus(); event.preventDefault();
    }
  });

  /* Keyboard shortcuts: "g" then a letter navigates; ignored while typing in a field. */
  var GO = { d: "/dashboard/", k: "/keys/", b: "/billing/", u: "/usage/", q: "/quickstart/" };
  var pendingG = 0;
  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.metaKey || event.ctrlKey || event.altKey) return;
    var t = event.target;
    if (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName) || document.querySelector("dialog[open]")) return;
    if (pendingG && Date.now() - pendingG < 1200 && GO[event.key]) {
      pendingG = 0; window.location.href = GO[event.key]; return;
    }
    pendingG = 0;
    if (event.key === "g") { pendingG = Date.now(); return; }
    if (event.key === "?") { openDialog("shortcuts-dialog"); return; }
    if (event.key === "t") { toggleTheme(); return; }
    var target = document.querySelector('[data-shortcut="' + event.key + '"]');
    if (target) { event.preventDefault(); target.focus(); target.click(); }
  });

  /* htmx: confirmations in our own dialog instead of window.confirm. */
  document.addEventListener("htmx:confirm", function (event) {
    if (!event.detail.question) return;
    event.preventDefault();
    confirmWith(event.detail.question, function () { event.detail.issueRequest(true); });
  });

  function onLoad(scope) {
    (scope || document).querySelectorAll("input[data-detect-timezone]").forEach(function (input) {
      try { input.value = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { /* keep UTC */ }
    });
    (scope || document).querySelectorAll("[data-autofocus]").forEach(function (el) { el.focus(); });
    (scope || document).querySelectorAll("dialog[data-open-on-load]").forEach(function (d) { if (!d.open) d.showModal(); });
  }
  /* Closing a dialog: a new secret leaves the DOM (the fresh form comes back from the server), and
     focus returns to the element that opened the dialog. */
  document.addEventListener("close", function (event) {
    var dialog = event.target;
    if (!dialog.hasAttribute) return;
    var reset = dialog.getAttribute("data-reset-from");
    if (reset && dialog.querySelector("[data-secret]")) {
      dialog.querySelector("[data-secret]").remove();
      if (window.htmx) htmx.ajax("GET", reset, { target: dialog.querySelector("[data-dialog-body]"), swap: "innerHTML" });
      else window.location.reload();
    }
    var opener = dialog.gpuniqOpener;
    dialog.gpuniqOpener = null;
    if (opener && opener.isConnected && opener !== document.body) opener.focus();
  }, true);
  document.addEventListener("DOMContentLoaded", function () { onLoad(document); });
  document.addEventListener("htmx:load", function (event) { onLoad(event.detail.elt); });

  if (window.matchMedia) {
    matchMedia("(prefers-color-scheme: dark)").addEventListener("change", function (event) {
      var stored = null;
      try { stored = localStorage.getItem("gpuniq-theme"); } catch (e) { /* ignore */ }
      if (!stored) root.setAttribute("data-theme", event.matches ? "dark" : "light");
    });
  }
})();
