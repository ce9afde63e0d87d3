// The campaign dashboard polls its live part; skip a poll while someone is writing a reason
// in one of its forms or has a wave's plan open, so the swap never throws their words away.
document.addEventListener("htmx:beforeRequest", function (event) {
  var live = document.getElementById("campaign-live");
  var active = document.activeElement;
  if (!live || event.detail.elt !== live) {
    return;
  }
  // A wave's plan form stays as the manager left it while it is open.
  if (live.querySelector("details.wave-plan[open]")) {
    event.preventDefault();
    return;
  }
  if (!active || !live.contains(active)) {
    return;
  }
  if (active.tagName === "TEXTAREA" || active.tagName === "BUTTON" || active.value) {
    event.preventDefault();
  }
});

// The Gantt polls too; while its table is open, it stays as it is, so the rows being read do
// not jump, and the next poll after it is closed brings it up to date.
document.addEventListener("htmx:beforeRequest", function (event) {
  var gantt = document.getElementById("campaign-gantt");
  if (!gantt || event.detail.elt !== gantt) {
    return;
  }
  var table = gantt.querySelector("details");
  if (table && table.open) {
    event.preventDefault();
  }
});
