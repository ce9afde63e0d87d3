// Draws every <pre class="mermaid"> on the page, and again whenever htmx swaps in new ones.
(function () {
  "use strict";
  function draw() {
    if (!window.mermaid) { return; }
    window.mermaid.run({ querySelector: "pre.mermaid:not([data-processed])" });
  }
  document.addEventListener("DOMContentLoaded", function () {
    if (window.mermaid) {
      window.mermaid.initialize({ startOnLoad: false, securityLevel: "strict", theme: "neutral" });
    }
    draw();
  });
  document.addEventListener("htmx:afterSwap", draw);
})();
