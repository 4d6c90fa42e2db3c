/* Runs in <head> before the first paint: the stored theme, else the OS preference. */
(function () {
  var stored = null;
  try { stored = localStorage.getItem("gpuniq-theme"); } catch (e) { /* private mode */ }
  var dark = stored ? stored === "dark" : !!(window.matchMedia && matchMedia("(prefers-color-scheme: dark)").matches);
  document.documentElement.setAttribute("data-theme", dark ? "dark" : "light");
  document.documentElement.classList.add("js");
})();
