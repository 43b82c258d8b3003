/*
 * The function page's Test tab: the Event JSON editor (CodeMirror 5 in JSON mode) with live
 * validation and Format JSON, and the template picker. The form itself is plain HTML driven
 * by htmx; this file only enhances it, and re-initialises whatever htmx swaps in.
 *
 *   textarea[data-json-editor]   becomes a JSON editor; data-error-target names the element
 *                                that shows the parse error
 *   [data-requires-valid-json]   disabled while the editor holds invalid JSON
 *   [data-format-json]           pretty-prints the editor's JSON (hidden until this runs)
 *   select[data-event-template]  replaces the editor's content with the chosen template,
 *                                fetched from data-template-url ("__template__" = its id)
 *   dialog[data-open-on-load]    opens itself when swapped in (e.g. a rename that failed)
 *   [data-run-test]              starting a Test run dismisses the form's success notice
 */
(function () {
  "use strict";

  var VALIDATE_DELAY_MS = 150;

  function lineAndColumn(text, position) {
    var before = text.slice(0, position);
    var lines = before.split("\n");
    return { line: lines.length, column: lines[lines.length - 1].length + 1 };
  }

  // Browsers word JSON.parse errors differently; keep the reason and say where it is.
  function describeParseError(error, text) {
    var message = String(error.message || error);
    var match = /at position (\d+)/.exec(message);
    var where = match
      ? lineAndColumn(text, Number(match[1]))
      : lineAndColumn(text, text.length);
    message = message
      .replace(/\s*\(line \d+ column \d+\)/, "")
      .replace(/\s*in JSON at position \d+/, "")
      .replace(/^JSON\.parse: /, "");
    return message + " (line " + where.line + ", column " + where.column + ")";
  }

  function parseError(text) {
    try {
      JSON.parse(text);
      return null;
    } catch (error) {
      return describeParseError(error, text);
    }
  }

  function setupEditor(textarea) {
    if (textarea.dataset.editorReady || typeof window.CodeMirror !== "function") {
      return;
    }
    textarea.dataset.editorReady = "true";
    var form = textarea.form;
    var field = textarea.closest(".field");
    var errorTarget = document.getElementById(textarea.dataset.errorTarget || "");
    // The server's message (e.g. a position in a saved payload) stays until the first edit.
    var serverMessage = errorTarget ? errorTarget.textContent : "";

    var editor = window.CodeMirror.fromTextArea(textarea, {
      mode: { name: "javascript", json: true },
      lineNumbers: true,
      matchBrackets: true,
      autoCloseBrackets: true,
      styleActiveLine: true,
      indentUnit: 2,
      tabSize: 2,
      indentWithTabs: false,
      extraKeys: {
        Tab: function (cm) {
          cm.execCommand(cm.somethingSelected() ? "indentMore" : "insertSoftTab");
        },
        "Shift-Tab": "indentLess",
      },
    });
    var wrapper = editor.getWrapperElement();
    wrapper.classList.add("event-json-editor");
    textarea.jsonEditor = editor;
    // The editor box can be resized by its corner; CodeMirror must re-measure when it is.
    if (typeof window.ResizeObserver === "function") {
      new window.ResizeObserver(function () {
        editor.refresh();
      }).observe(wrapper);
    }

    function showValidity() {
      var message = parseError(editor.getValue());
      if (errorTarget) {
        errorTarget.textContent = message ? "Event JSON is not valid JSON: " + message : "";
      }
      if (field) {
        field.classList.toggle("has-error", Boolean(message));
      }
      if (form) {
        form.querySelectorAll("[data-requires-valid-json]").forEach(function (button) {
          button.disabled = Boolean(message);
          button.title = message ? "Fix the event JSON to save it" : "";
        });
      }
    }

    var timer = null;
    editor.on("changes", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(showValidity, VALIDATE_DELAY_MS);
    });

    if (serverMessage && parseError(editor.getValue()) === null) {
      if (field) {
        field.classList.add("has-error");
      }
    } else {
      showValidity();
    }

    if (form) {
      form.querySelectorAll("[data-format-json]").forEach(function (button) {
        button.hidden = false;
        button.addEventListener("click", function () {
          var text = editor.getValue();
          if (parseError(text) === null) {
            editor.setValue(JSON.stringify(JSON.parse(text), null, 2) + "\n");
          } else {
            showValidity();
          }
          editor.focus();
        });
      });
    }
  }

  function editorIn(form) {
    var textarea = form && form.querySelector("textarea[data-json-editor]");
    return textarea ? textarea.jsonEditor : null;
  }

  function setupTemplatePicker(select) {
    if (select.dataset.pickerReady) {
      return;
    }
    select.dataset.pickerReady = "true";
    select.addEventListener("change", function () {
      if (!select.value) {
        return;
      }
      var url = select.dataset.templateUrl.replace("__template__", encodeURIComponent(select.value));
      var form = document.querySelector("[data-test-event-form]");
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) {
            throw new Error("HTTP " + response.status);
          }
          return response.json();
        })
        .then(function (data) {
          var editor = editorIn(form);
          if (editor) {
            editor.setValue(data.payload);
            editor.focus();
          } else if (form) {
            form.querySelector("textarea[name=payload]").value = data.payload;
          }
        })
        .catch(function () {
          select.setCustomValidity("The template could not be loaded. Try again.");
          select.reportValidity();
          select.setCustomValidity("");
        });
    });
  }

  function initialise(root) {
    if (!(root instanceof Element || root instanceof Document)) {
      return;
    }
    root.querySelectorAll("textarea[data-json-editor]").forEach(setupEditor);
    root.querySelectorAll("select[data-event-template]").forEach(setupTemplatePicker);
    if (root instanceof Element) {
      root.querySelectorAll("dialog[data-open-on-load]").forEach(function (dialog) {
        if (!dialog.open && root !== document.body) {
          dialog.showModal();
        }
      });
    }
  }

  // CodeMirror copies its text into the textarea only on a native submit. htmx reads the
  // form's values after "htmx:confirm", so copy them there for every htmx request.
  document.addEventListener("htmx:confirm", function () {
    document.querySelectorAll("textarea[data-json-editor]").forEach(function (textarea) {
      if (textarea.jsonEditor) {
        textarea.jsonEditor.save();
      }
    });
  });

  // A notice such as "The test event … was successfully saved." belongs to the save, not to
  // the Test runs after it.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var source = event.detail && event.detail.elt;
    if (source instanceof Element && source.matches("[data-run-test]")) {
      document.querySelectorAll("#test-event .alert-success").forEach(function (notice) {
        notice.remove();
      });
    }
  });

  document.addEventListener("htmx:load", function (event) {
    initialise(event.detail.elt);
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      initialise(document);
    });
  } else {
    initialise(document);
  }
})();
