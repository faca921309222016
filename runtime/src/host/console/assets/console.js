// The Sluice console's only script: it refreshes the parts of a page that change by themselves
// and asks before a restart. Every action works without it (plain forms).
"use strict";

const REFRESH_EVERY_MS = 3000;

// Each element with data-refresh="URL" gets that URL's HTML every few seconds.
function refresh(element) {
  const url = element.getAttribute("data-refresh");
  setInterval(async () => {
    if (document.hidden) {
      return;
    }
    try {
      const response = await fetch(url, { credentials: "same-origin" });
      if (response.ok) {
        element.innerHTML = await response.text();
      }
    } catch (_) {
      // The host may be restarting: the next round tries again.
    }
  }, REFRESH_EVERY_MS);
}

// A form with data-confirm="question" is sent only when the user agrees.
function confirmBeforeSending(form) {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });
}

document.querySelectorAll("[data-refresh]").forEach(refresh);
document.querySelectorAll("form[data-confirm]").forEach(confirmBeforeSending);
