/*
 * Small behaviours shared by every console page. Everything is wired by event delegation on
 * data attributes, so markup swapped in by htmx works without re-initialisation.
 *
 *   [data-open-modal="ID"]     opens dialog#ID with showModal()
 *   [data-close-modal]         closes the dialog it sits in
 *   [data-dismiss]             removes the closest .alert
 *   [data-copy="TEXT"]         copies TEXT to the clipboard and says so briefly
 *   input[data-confirm-text]   enables [data-confirm-submit] in the same form only while the
 *                              input's value equals data-confirm-text
 *   [data-add-row="ID"]        appends a copy of <template id="ID"> to its data-target
 *   [data-remove-row]          removes the closest <tr> (or [data-row])
 *   [data-show-when="N=V"]     shown only while the checked radio named N in the same form has
 *                              value V (the server renders the first state; noscript shows all)
 *   [data-sync-url-param="N"]  keeps ?N= in the address bar in step with the radio named N
 *   input[data-search-on-enter] Enter searches (htmx "search" trigger) instead of submitting
 *   details.dropdown           closes on outside click, on Escape and after choosing an item
 *   pre.logs.is-wrapped        short tab-separated fields of each line are kept whole, so a
 *                              long line (REPORT) wraps at a tab rather than inside a field
 */
(function () {
  "use strict";

  function closestFrom(event, selector) {
    var target = event.target;
    return target instanceof Element ? target.closest(selector) : null;
  }

  function openModal(id, opener) {
    var dialog = document.getElementById(id);
    if (!(dialog instanceof HTMLDialogElement)) {
      return;
    }
    closeDropdowns(null);
    dialog.returnFocusTo = opener || document.activeElement;
    dialog.querySelectorAll("form").forEach(function (form) {
      if (form.hasAttribute("data-reset-on-open")) {
        form.reset();
      }
    });
    dialog.querySelectorAll("input[data-confirm-text]").forEach(syncConfirmation);
    dialog.showModal();
    var autofocus = dialog.querySelector("[autofocus], input:not([type=hidden]), select, textarea");
    if (autofocus instanceof HTMLElement) {
      autofocus.focus();
    }
  }

  function closeModal(dialog) {
    if (dialog instanceof HTMLDialogElement && dialog.open) {
      dialog.close();
    }
  }

  function closeDropdowns(except) {
    document.querySelectorAll("details.dropdown[open]").forEach(function (dropdown) {
      if (dropdown !== except) {
        dropdown.removeAttribute("open");
      }
    });
  }

  function syncConfirmation(input) {
    var form = input.form;
    if (!form) {
      return;
    }
    var matches = input.value.trim() === input.getAttribute("data-confirm-text");
    form.querySelectorAll("[data-confirm-submit]").forEach(function (button) {
      button.disabled = !matches;
    });
  }

  function copyText(button) {
    var text = button.getAttribute("data-copy") || "";
    var done = function () {
      var label = button.getAttribute("data-copied-label") || "Copied";
      var status = document.createElement("span");
      status.className = "copy-feedback";
      status.setAttribute("role", "status");
      status.textContent = label;
      button.querySelectorAll(".copy-feedback").forEach(function (old) {
        old.remove();
      });
      button.appendChild(status);
      window.setTimeout(function () {
        status.remove();
      }, 1600);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () {
        fallbackCopy(text);
        done();
      });
    } else {
      fallbackCopy(text);
      done();
    }
  }

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "visually-hidden";
    document.body.appendChild(area);
    area.select();
    try {
      document.execCommand("copy");
    } finally {
      area.remove();
    }
  }

  function addRow(button) {
    var template = document.getElementById(button.getAttribute("data-add-row"));
    var target = document.getElementById(button.getAttribute("data-target"));
    if (!(template instanceof HTMLTemplateElement) || !target) {
      return;
    }
    var fragment = template.content.cloneNode(true);
    var firstInput = fragment.querySelector("input, select, textarea");
    target.appendChild(fragment);
    target.querySelectorAll("[data-empty-row]").forEach(function (row) {
      row.remove();
    });
    if (firstInput instanceof HTMLElement) {
      firstInput.focus();
    }
  }

  document.addEventListener("click", function (event) {
    // A click on the backdrop lands on the dialog element itself.
    if (event.target instanceof HTMLDialogElement && event.target.classList.contains("modal")) {
      closeModal(event.target);
      return;
    }
    var opener = closestFrom(event, "[data-open-modal]");
    if (opener) {
      event.preventDefault();
      openModal(opener.getAttribute("data-open-modal"), opener);
      return;
    }
    var closer = closestFrom(event, "[data-close-modal]");
    if (closer) {
      event.preventDefault();
      closeModal(closer.closest("dialog"));
      return;
    }
    var dismiss = closestFrom(event, "[data-dismiss]");
    if (dismiss) {
      var alert = dismiss.closest(".alert");
      if (alert) {
        alert.remove();
      }
      return;
    }
    var copy = closestFrom(event, "[data-copy]");
    if (copy) {
      event.preventDefault();
      copyText(copy);
      return;
    }
    var add = closestFrom(event, "[data-add-row]");
    if (add) {
      event.preventDefault();
      addRow(add);
      return;
    }
    var remove = closestFrom(event, "[data-remove-row]");
    if (remove) {
      event.preventDefault();
      var row = remove.closest("[data-row], tr");
      if (row) {
        row.remove();
      }
      return;
    }
    var insideDropdown = closestFrom(event, "details.dropdown");
    closeDropdowns(insideDropdown);
    if (insideDropdown && closestFrom(event, ".dropdown-menu a, .dropdown-menu button")) {
      insideDropdown.removeAttribute("open");
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") {
      return;
    }
    var open = document.querySelector("details.dropdown[open]");
    if (open) {
      open.removeAttribute("open");
      var summary = open.querySelector("summary");
      if (summary) {
        summary.focus();
      }
    }
  });

  function syncConditionalSections(scope) {
    scope.querySelectorAll("[data-show-when]").forEach(function (section) {
      var rule = section.getAttribute("data-show-when").split("=");
      var container = section.closest("form") || document;
      var checked = container.querySelector(
        'input[type="radio"][name="' + rule[0] + '"]:checked'
      );
      section.hidden = !checked || checked.value !== rule[1];
    });
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (!(target instanceof HTMLInputElement) || target.type !== "radio") {
      return;
    }
    syncConditionalSections(target.form || document);
    var synced = target.closest("[data-sync-url-param]");
    if (synced && synced.getAttribute("data-sync-url-param") === target.name) {
      var url = new URL(window.location.href);
      url.searchParams.set(target.name, target.value);
      window.history.replaceState(window.history.state, "", url);
    }
  });

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (
      event.key === "Enter" &&
      target instanceof HTMLInputElement &&
      target.hasAttribute("data-search-on-enter")
    ) {
      event.preventDefault();
      target.dispatchEvent(new Event("search", { bubbles: true }));
    }
  });

  document.addEventListener("input", function (event) {
    var target = event.target;
    if (target instanceof HTMLInputElement && target.hasAttribute("data-confirm-text")) {
      syncConfirmation(target);
    }
  });

  document.addEventListener(
    "close",
    function (event) {
      var dialog = event.target;
      if (dialog instanceof HTMLDialogElement && dialog.returnFocusTo instanceof HTMLElement) {
        dialog.returnFocusTo.focus();
      }
    },
    true
  );

  // Longer fields (a message after "[INFO]\t<time>\t<id>\t") may still wrap inside.
  var LOG_FIELD_MAX_LENGTH = 60;

  function logFieldNodes(line) {
    var nodes = [];
    line.split("\t").forEach(function (field, index) {
      if (index > 0) {
        nodes.push(document.createTextNode("\t"));
      }
      if (field.length > 0 && field.length <= LOG_FIELD_MAX_LENGTH) {
        var span = document.createElement("span");
        span.className = "log-field";
        span.textContent = field;
        nodes.push(span);
      } else if (field.length > 0) {
        nodes.push(document.createTextNode(field));
      }
    });
    return nodes;
  }

  // Only the markup changes: the text, tabs and newlines included, reads and copies as before.
  function keepLogFieldsWhole(pre) {
    if (pre.hasAttribute("data-log-fields") || pre.children.length > 0) {
      return;
    }
    pre.setAttribute("data-log-fields", "");
    var text = pre.textContent;
    if (text.indexOf("\t") === -1) {
      return;
    }
    var fragment = document.createDocumentFragment();
    text.split("\n").forEach(function (line, index) {
      if (index > 0) {
        fragment.appendChild(document.createTextNode("\n"));
      }
      if (line.indexOf("\t") === -1) {
        fragment.appendChild(document.createTextNode(line));
      } else {
        logFieldNodes(line).forEach(function (node) {
          fragment.appendChild(node);
        });
      }
    });
    pre.replaceChildren(fragment);
  }

  function keepLogFieldsWholeWithin(root) {
    if (root instanceof Element && root.matches("pre.logs.is-wrapped")) {
      keepLogFieldsWhole(root);
    }
    if (root instanceof Element || root instanceof Document) {
      root.querySelectorAll("pre.logs.is-wrapped").forEach(keepLogFieldsWhole);
    }
  }

  document.addEventListener("htmx:load", function (event) {
    keepLogFieldsWholeWithin(event.detail && event.detail.elt);
  });

  // A dialog marked data-open-on-load opens itself, e.g. after a failed submission.
  function openRequestedDialogs() {
    document.querySelectorAll("dialog[data-open-on-load]").forEach(function (dialog) {
      if (dialog instanceof HTMLDialogElement && !dialog.open) {
        dialog.showModal();
      }
    });
    document.querySelectorAll("input[data-confirm-text]").forEach(syncConfirmation);
  }

  function initialise() {
    openRequestedDialogs();
    keepLogFieldsWholeWithin(document);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", initialise);
  } else {
    initialise();
  }
})();
