// Sergas dashboard: progressive enhancements. Every page works without this file.

// A control's link loads its confirmation into the page's <dialog> (hx-get); without
// JavaScript the same link opens the confirmation as a page.
document.addEventListener("htmx:afterSwap", (event) => {
  const dialog = document.getElementById("confirm-dialog");
  if (dialog && event.detail.target === dialog && !dialog.open) {
    dialog.showModal();
    const first = dialog.querySelector("input, textarea, button[type=submit]");
    if (first) first.focus();
  }
});

document.addEventListener("click", (event) => {
  const closer = event.target.closest("[data-close-dialog]");
  const dialog = closer && closer.closest("dialog");
  if (dialog) {
    event.preventDefault();
    dialog.close();
  }
});

// The review form shows only the fields the chosen schedule type uses.
function showScheduleFields(form) {
  const select = form.querySelector("select[name=schedule_type]");
  if (!select) return;
  form.querySelectorAll("[data-for-types]").forEach((field) => {
    field.hidden = !field.dataset.forTypes.split(" ").includes(select.value);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form[data-review-form]").forEach((form) => {
    showScheduleFields(form);
    form.addEventListener("change", (event) => {
      if (event.target.name === "schedule_type") showScheduleFields(form);
    });
  });
});
