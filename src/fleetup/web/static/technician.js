// The technician's pages: running timers against each step's budget, and the signature pad.
(function () {
  "use strict";
  var loadedAt = Date.now();

  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function clock(seconds) { return Math.floor(seconds / 60) + ":" + pad(seconds % 60); }

  function tick() {
    var timers = document.querySelectorAll(".timer[data-elapsed]");
    for (var i = 0; i < timers.length; i++) {
      var el = timers[i];
      if (!el.dataset.base) { el.dataset.base = String(Date.now()); }
      var since = Math.floor((Date.now() - Number(el.dataset.base)) / 1000);
      var seconds = Number(el.dataset.elapsed) + since;
      var budget = Number(el.dataset.budget || 0);
      el.textContent = clock(seconds) + (budget ? " / " + clock(budget) : "");
      el.classList.toggle("timer--over", budget > 0 && seconds > budget);
    }
  }

  function fitCanvas(canvas, signaturePad) {
    var ratio = Math.max(window.devicePixelRatio || 1, 1);
    canvas.width = canvas.offsetWidth * ratio;
    canvas.height = canvas.offsetHeight * ratio;
    canvas.getContext("2d").scale(ratio, ratio);
    signaturePad.clear();
  }

  function setUpSignature() {
    var form = document.querySelector("[data-signature-form]");
    if (!form || !window.SignaturePad) { return; }
    var canvas = form.querySelector("[data-signature-pad]");
    var value = form.querySelector("[data-signature-value]");
    var empty = form.querySelector("[data-signature-empty]");
    var signaturePad = new window.SignaturePad(canvas, { backgroundColor: "rgb(255,255,255)" });
    fitCanvas(canvas, signaturePad);
    form.querySelector("[data-signature-clear]").addEventListener("click", function () {
      signaturePad.clear();
    });
    form.addEventListener("submit", function (event) {
      if (signaturePad.isEmpty()) {
        event.preventDefault();
        empty.hidden = false;
        return;
      }
      value.value = signaturePad.toDataURL("image/png");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setUpSignature();
    tick();
    window.setInterval(tick, 1000);
  });
  document.addEventListener("htmx:afterSwap", tick);
  void loadedAt;
})();
