// The campaign dashboard polls its live part; skip a poll while someone is writing a reason
// in one of its forms, so the swap never throws their words away.
document.addEventListener("htmx:beforeRequest", function (event) {
  var live = document.getElementById("campaign-live");
  var active = document.activeElement;
  if (!live || event.detail.elt !== live || !active || !live.contains(active)) {
    return;
  }
  if (active.tagName === "TEXTAREA" || active.tagName === "BUTTON" || active.value) {
    event.preventDefault();
  }
});
