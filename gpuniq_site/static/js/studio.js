/* Studio: reference images and start frames become data: URIs the server passes on as
   input_images / image_url; refusals (402, 400) swap into the form's error slot instead of being
   dropped. Prices, progress and the gallery are server-rendered htmx partials. */
(function () {
  "use strict";
  var MAX_BYTES = 8 * 1024 * 1024;

  function refParts(input) {
    var field = input.closest(".field");
    return { value: field.querySelector("[data-ref-value]"), preview: field.querySelector("[data-ref-preview]") };
  }

  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!input.matches || !input.matches("[data-ref-file]")) return;
    var parts = refParts(input), file = input.files && input.files[0];
    if (!file) return;
    if (file.size > MAX_BYTES) { window.alert("Please choose an image under 8 MB."); input.value = ""; return; }
    var reader = new FileReader();
    reader.onload = function () {
      parts.value.value = reader.result;
      parts.preview.querySelector("img").src = reader.result;
      parts.preview.hidden = false;
    };
    reader.readAsDataURL(file);
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-ref-clear]");
    if (!button) return;
    var field = button.closest(".field");
    field.querySelector("[data-ref-value]").value = "";
    field.querySelector("[data-ref-file]").value = "";
    field.querySelector("[data-ref-preview]").hidden = true;
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    /* htmx 2 names the swap's target in detail.elt; the element that sent the request is requestConfig.elt */
    var source = (event.detail.requestConfig && event.detail.requestConfig.elt) || event.detail.elt;
    var form = source && source.closest && source.closest("[data-swap-errors]");
    if (!form) return;
    var slot = document.querySelector(form.getAttribute("data-swap-errors"));
    var status = event.detail.xhr.status;
    if (status >= 400) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
      event.detail.target = slot;
      event.detail.swapOverride = "innerHTML";
      if (status === 401) event.detail.serverResponse = "<div class='callout callout-warn'>Your session ended: sign in again.</div>";
    } else if (slot) {
      slot.innerHTML = "";
    }
  });
})();
