// Follows a run on a thread page: polls the progress endpoint, lists the nodes the run finishes,
// and reloads the page once the run stops (the page then shows where the thread stands).
(function () {
  "use strict";
  const box = document.getElementById("progress");
  if (!box || !box.dataset.poll) {
    return;
  }
  const state = document.getElementById("progress-state");
  const events = document.getElementById("progress-events");

  function show(run) {
    events.replaceChildren(
      ...(run ? run.events : []).map(function (event) {
        const item = document.createElement("li");
        const node = document.createElement("b");
        node.textContent = event.node;
        item.append(node, " " + event.summary);
        return item;
      })
    );
  }

  async function poll() {
    try {
      const response = await fetch(box.dataset.poll, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const progress = await response.json();
        show(progress.run);
        if (!progress.active) {
          window.location.reload();
          return;
        }
        state.textContent = "running…";
      } else {
        state.textContent = "cannot follow the run (HTTP " + response.status + "); reload the page";
        return;
      }
    } catch (error) {
      state.textContent = "lost contact with the inbox; trying again";
    }
    window.setTimeout(poll, 700);
  }

  poll();
})();
