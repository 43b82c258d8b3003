/*
 * The Code tab: an explorer tree over the deployment package's files, editor tabs, a
 * CodeMirror editor and Deploy. The deployed files arrive as JSON in <script id="code-files">;
 * every edit stays in memory until Deploy posts the complete file set as
 * {"files": {path: text}}. Nothing is sent anywhere else.
 */
(function () {
  "use strict";

  var root = document.getElementById("code-source");
  if (!root || root.hasAttribute("data-code-ready")) {
    return;
  }
  root.setAttribute("data-code-ready", "");

  var INDENT = 4;
  var MAX_PATH_LENGTH = 255;
  var LANGUAGES = {
    py: { id: "python", name: "Python", mode: { name: "python", version: 3 } },
    js: { id: "javascript", name: "JavaScript", mode: { name: "javascript" } },
    mjs: { id: "javascript", name: "JavaScript", mode: { name: "javascript" } },
    cjs: { id: "javascript", name: "JavaScript", mode: { name: "javascript" } },
    ts: { id: "typescript", name: "TypeScript", mode: { name: "javascript", typescript: true } },
    json: { id: "json", name: "JSON", mode: { name: "javascript", json: true } },
  };
  var PLAIN_TEXT = { id: "text", name: "Plain Text", mode: "text/plain" };

  var alerts = root.querySelector("[data-code-alerts]");
  var deployButton = root.querySelector("[data-code-deploy]");
  // A published version (or an alias) is shown read-only: no Deploy button, no edits.
  var readOnly = root.hasAttribute("data-read-only");
  var statusLabel = root.querySelector("[data-code-status]");
  var uploadForm = document.querySelector("[data-code-upload-form]");
  var filesScript = document.getElementById("code-files");

  // Shared between the editor and the upload dialog.
  var page = {
    isDirty: function () {
      return false;
    },
    leavingOnPurpose: false,
  };

  // ------------------------------------------------------------------ small helpers

  function basename(path) {
    return path.slice(path.lastIndexOf("/") + 1);
  }

  function dirname(path) {
    var slash = path.lastIndexOf("/");
    return slash < 0 ? "" : path.slice(0, slash);
  }

  function joinPath(folder, name) {
    return folder ? folder + "/" + name : name;
  }

  function isInside(path, folder) {
    return folder === "" || path.indexOf(folder + "/") === 0;
  }

  function ancestors(path) {
    var result = [];
    var folder = dirname(path);
    while (folder) {
      result.push(folder);
      folder = dirname(folder);
    }
    return result;
  }

  function languageOf(path) {
    var name = basename(path);
    var dot = name.lastIndexOf(".");
    var extension = dot > 0 ? name.slice(dot + 1).toLowerCase() : "";
    return Object.prototype.hasOwnProperty.call(LANGUAGES, extension)
      ? LANGUAGES[extension]
      : PLAIN_TEXT;
  }

  function byName(a, b) {
    return a.localeCompare(b, undefined, { numeric: true, sensitivity: "base" }) || (a < b ? -1 : 1);
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  function formatBytes(bytes) {
    return (bytes / (1024 * 1024)).toFixed(1) + " MB";
  }

  function csrfToken() {
    var input = document.querySelector("#code-tab input[name=csrfmiddlewaretoken]");
    if (input) {
      return input.value;
    }
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function showAlert(kind, text) {
    var alert = element("div", "alert alert-" + kind);
    alert.setAttribute("role", kind === "error" ? "alert" : "status");
    alert.appendChild(element("div", "alert-body", text));
    var dismiss = element("button", "icon-btn alert-dismiss");
    dismiss.type = "button";
    dismiss.setAttribute("data-dismiss", "");
    dismiss.setAttribute("aria-label", "Dismiss");
    dismiss.appendChild(element("span", "icon icon-close"));
    alert.appendChild(dismiss);
    alerts.replaceChildren(alert);
  }

  function clearAlerts() {
    alerts.replaceChildren();
  }

  function updateProperties(values) {
    document.querySelectorAll("[data-code-prop]").forEach(function (node) {
      var key = node.getAttribute("data-code-prop");
      if (values[key] !== undefined) {
        node.textContent = values[key];
      }
      if (node.tagName === "TIME" && values.last_modified) {
        node.setAttribute("datetime", values.last_modified);
      }
    });
  }

  // ------------------------------------------------------------------ leaving the page

  window.addEventListener("beforeunload", function (event) {
    if (!page.leavingOnPurpose && page.isDirty()) {
      event.preventDefault();
      event.returnValue = "";
    }
  });

  // ------------------------------------------------------------------ .zip upload dialog

  function setUpUpload() {
    if (!uploadForm) {
      return;
    }
    uploadForm.setAttribute("novalidate", "");
    var input = uploadForm.querySelector("[data-code-upload-input]");
    var error = uploadForm.querySelector("[data-code-upload-error]");
    var dirtyNote = uploadForm.querySelector("[data-code-upload-dirty]");
    var submit = uploadForm.querySelector("button[type=submit]");
    var maxBytes = Number(uploadForm.getAttribute("data-max-bytes"));

    function setError(message) {
      error.textContent = message;
      if (message) {
        input.setAttribute("aria-invalid", "true");
      } else {
        input.removeAttribute("aria-invalid");
      }
    }

    var dialog = uploadForm.closest("dialog");
    if (dialog) {
      // console.js resets the form before showModal(); refresh what the reset cannot.
      new MutationObserver(function () {
        if (dialog.open) {
          setError("");
          dirtyNote.hidden = !page.isDirty();
          submit.disabled = false;
          submit.textContent = "Save";
        }
      }).observe(dialog, { attributes: true, attributeFilter: ["open"] });
    }
    input.addEventListener("change", function () {
      setError("");
    });
    uploadForm.addEventListener("submit", function (event) {
      var file = input.files && input.files[0];
      var problem = "";
      if (!file) {
        problem = "Choose a .zip file to upload.";
      } else if (!/\.zip$/i.test(file.name)) {
        problem = "The file must be a .zip file.";
      } else if (file.size === 0) {
        problem = "The file is empty.";
      } else if (file.size > maxBytes) {
        problem =
          "The file is " + formatBytes(file.size) + "; direct uploads are limited to " +
          formatBytes(maxBytes) + ".";
      }
      if (problem) {
        event.preventDefault();
        setError(problem);
        input.focus();
        return;
      }
      page.leavingOnPurpose = true;
      submit.disabled = true;
      submit.textContent = "Uploading…";
    });
  }

  // ------------------------------------------------------------------ the editor

  function startEditor(initialFiles) {
    var tree = root.querySelector("[data-code-tree]");
    var treeHint = root.querySelector("[data-code-tree-hint]");
    var tabBar = root.querySelector("[data-code-tabs]");
    var editorHost = root.querySelector("[data-code-editor]");
    var emptyPane = root.querySelector("[data-code-empty]");
    var positionLabel = root.querySelector("[data-code-position]");
    var languageLabel = root.querySelector("[data-code-language]");
    var summaryLabel = root.querySelector("[data-code-summary]");
    var endOfLineLabel = root.querySelector("[data-code-eol]");
    var deleteDialog = document.getElementById("code-delete-modal");
    var handlerFile = root.getAttribute("data-handler-file") || "";

    var deployed = new Map(Object.entries(initialFiles));
    var files = new Map(); // path -> {path, text, doc}: doc, once opened, holds the live text
    var folders = new Set(); // folders made in the editor, which may hold no file yet
    var expanded = new Set();
    var changed = new Set();
    var tabs = [];
    var active = null;
    var selected = null; // {kind: "file" | "folder", path}
    var editing = null; // {mode: "new-file" | "new-folder" | "rename", folder, path, kind, error}
    var baseSha = root.getAttribute("data-code-sha256") || "";
    var deploying = false;
    var renderQueued = false;

    deployed.forEach(function (text, path) {
      files.set(path, { path: path, text: text, doc: null });
    });

    var cm = window.CodeMirror(editorHost, {
      value: "",
      readOnly: readOnly,
      lineNumbers: true,
      indentUnit: INDENT,
      tabSize: INDENT,
      indentWithTabs: false,
      smartIndent: true,
      styleActiveLine: true,
      matchBrackets: true,
      autoCloseBrackets: true,
      electricChars: true,
      viewportMargin: 20,
      extraKeys: {
        Tab: function (editor) {
          if (editor.somethingSelected()) {
            editor.indentSelection("add");
          } else {
            editor.execCommand("insertSoftTab");
          }
        },
        "Shift-Tab": function (editor) {
          editor.indentSelection("subtract");
        },
        // Tab indents inside the editor, so Escape is the way out for keyboard users.
        Esc: function (editor) {
          if (editor.listSelections().length > 1) {
            editor.execCommand("singleSelection");
            return;
          }
          var tab = tabBar.querySelector(".ide-tab.is-active");
          if (tab) {
            tab.focus();
          }
        },
      },
    });
    cm.getInputField().setAttribute("aria-label", "Code editor");

    // -------------------------------------------------- state queries

    function textOf(entry) {
      return entry.doc ? entry.doc.getValue() : entry.text;
    }

    function isChanged(path) {
      var entry = files.get(path);
      return !deployed.has(path) || deployed.get(path) !== textOf(entry);
    }

    function folderExists(path) {
      if (folders.has(path)) {
        return true;
      }
      var prefix = path + "/";
      for (var name of files.keys()) {
        if (name.indexOf(prefix) === 0) {
          return true;
        }
      }
      return false;
    }

    function folderChanged(path) {
      for (var name of changed) {
        if (isInside(name, path)) {
          return true;
        }
      }
      return false;
    }

    function removedCount() {
      var count = 0;
      deployed.forEach(function (_, path) {
        if (!files.has(path)) {
          count += 1;
        }
      });
      return count;
    }

    function isDirty() {
      return changed.size > 0 || removedCount() > 0;
    }
    page.isDirty = isDirty;

    function recomputeChanges() {
      changed.clear();
      files.forEach(function (_, path) {
        if (isChanged(path)) {
          changed.add(path);
        }
      });
    }

    // -------------------------------------------------- documents and tabs

    // Keep Windows line endings as they are, so opening a file does not change it.
    function lineSeparatorOf(text) {
      if (text.indexOf("\r\n") < 0) {
        return null;
      }
      var lone = text.split("\r\n").some(function (part) {
        return part.indexOf("\n") >= 0;
      });
      return lone ? null : "\r\n";
    }

    function documentFor(entry) {
      if (!entry.doc) {
        entry.doc = new window.CodeMirror.Doc(
          entry.text, languageOf(entry.path).mode, 0, lineSeparatorOf(entry.text)
        );
        entry.text = "";
        entry.doc.on("change", function () {
          var was = changed.has(entry.path);
          var now = isChanged(entry.path);
          if (now) {
            changed.add(entry.path);
          } else {
            changed.delete(entry.path);
          }
          if (was !== now) {
            queueRender();
          }
        });
      }
      return entry.doc;
    }

    function openFile(path, focusEditor) {
      var entry = files.get(path);
      if (!entry) {
        return;
      }
      if (tabs.indexOf(path) < 0) {
        var at = active ? tabs.indexOf(active) + 1 : tabs.length;
        tabs.splice(at, 0, path);
      }
      active = path;
      selected = { kind: "file", path: path };
      ancestors(path).forEach(function (folder) {
        expanded.add(folder);
      });
      var doc = documentFor(entry);
      if (cm.getDoc() !== doc) {
        cm.swapDoc(doc);
      }
      var mode = languageOf(path).mode;
      if (doc.modeOption !== mode) {
        cm.setOption("mode", mode);
      }
      render();
      cm.refresh();
      if (focusEditor) {
        cm.focus();
      }
    }

    function closeTab(path) {
      var index = tabs.indexOf(path);
      if (index < 0) {
        return;
      }
      tabs.splice(index, 1);
      if (active === path) {
        var next = tabs[Math.min(index, tabs.length - 1)];
        if (next) {
          openFile(next, false);
          return;
        }
        active = null;
      }
      render();
    }

    // -------------------------------------------------- tree operations

    function validatePath(path, options) {
      if (!path) {
        return "A name is required.";
      }
      if (path.length > MAX_PATH_LENGTH) {
        return "Paths are limited to " + MAX_PATH_LENGTH + " characters.";
      }
      if (path.charAt(0) === "/" || path.indexOf("\\") >= 0) {
        return "Use a path relative to the package root, with / between folders.";
      }
      var parts = path.split("/");
      if (parts.some(function (part) { return part === "" || part === "." || part === ".."; })) {
        return "A name cannot be empty, \".\" or \"..\".";
      }
      if (path !== options.ignore) {
        if (files.has(path)) {
          return "A file named " + path + " already exists.";
        }
        if (folderExists(path)) {
          return "A folder named " + path + " already exists.";
        }
      }
      for (var i = 1; i < parts.length; i += 1) {
        var prefix = parts.slice(0, i).join("/");
        if (files.has(prefix)) {
          return prefix + " is a file, so it cannot hold other files.";
        }
      }
      if (options.kind === "folder" && options.ignore && isInside(path, options.ignore)) {
        return "A folder cannot be moved into itself.";
      }
      return null;
    }

    function createFile(path) {
      files.set(path, { path: path, text: "", doc: null });
      changed.add(path);
      openFile(path, true);
    }

    function createFolder(path) {
      folders.add(path);
      expanded.add(path);
      ancestors(path).forEach(function (folder) {
        expanded.add(folder);
      });
      selected = { kind: "folder", path: path };
    }

    function movePath(oldPath, newPath) {
      var entry = files.get(oldPath);
      files.delete(oldPath);
      entry.path = newPath;
      files.set(newPath, entry);
      var tab = tabs.indexOf(oldPath);
      if (tab >= 0) {
        tabs[tab] = newPath;
      }
      if (active === oldPath) {
        active = newPath;
        var mode = languageOf(newPath).mode;
        if (cm.getDoc() === entry.doc && entry.doc.modeOption !== mode) {
          cm.setOption("mode", mode);
        }
      } else if (entry.doc) {
        // A document that is not shown picks up its mode when it is shown again.
        entry.doc.modeOption = languageOf(newPath).mode;
      }
    }

    function renameFile(oldPath, newPath) {
      movePath(oldPath, newPath);
      ancestors(newPath).forEach(function (folder) {
        expanded.add(folder);
      });
      selected = { kind: "file", path: newPath };
    }

    function renameFolder(oldPath, newPath) {
      Array.from(files.keys()).forEach(function (path) {
        if (isInside(path, oldPath)) {
          movePath(path, newPath + path.slice(oldPath.length));
        }
      });
      [folders, expanded].forEach(function (set) {
        Array.from(set).forEach(function (path) {
          if (path === oldPath || isInside(path, oldPath)) {
            set.delete(path);
            set.add(newPath + path.slice(oldPath.length));
          }
        });
      });
      folders.add(newPath);
      expanded.add(newPath);
      selected = { kind: "folder", path: newPath };
    }

    function deletePaths(paths) {
      paths.forEach(function (path) {
        files.delete(path);
        changed.delete(path);
        var tab = tabs.indexOf(path);
        if (tab >= 0) {
          tabs.splice(tab, 1);
        }
      });
      if (active && !files.has(active)) {
        active = null;
        if (tabs.length) {
          openFile(tabs[tabs.length - 1], false);
        }
      }
    }

    function deleteSelected() {
      if (!selected) {
        return;
      }
      var target = selected;
      var paths =
        target.kind === "file"
          ? [target.path]
          : Array.from(files.keys()).filter(function (path) {
              return isInside(path, target.path);
            });
      var title = deleteDialog.querySelector("[data-code-delete-title]");
      var message = deleteDialog.querySelector("[data-code-delete-message]");
      var handlerWarning = deleteDialog.querySelector("[data-code-delete-handler]");
      title.textContent = target.kind === "file" ? "Delete file" : "Delete folder";
      message.textContent =
        target.kind === "file"
          ? "Delete " + target.path + "?"
          : "Delete the folder " + target.path + " and the " + paths.length + " file" +
            (paths.length === 1 ? "" : "s") + " in it?";
      message.textContent += " The deletion takes effect when you deploy.";
      var losesHandler = handlerFile && paths.indexOf(handlerFile) >= 0;
      handlerWarning.hidden = !losesHandler;
      if (losesHandler) {
        handlerWarning.querySelector(".alert-body").textContent =
          handlerFile + " holds the function's handler (" + handlerHint() + "). Without it, " +
          "invocations fail until you add it back or change the handler in Runtime settings.";
      }
      deleteDialog.returnValue = "";
      deleteDialog.addEventListener(
        "close",
        function () {
          if (deleteDialog.returnValue !== "delete") {
            focusTree();
            return;
          }
          deletePaths(paths);
          if (target.kind === "folder") {
            Array.from(folders).forEach(function (path) {
              if (path === target.path || isInside(path, target.path)) {
                folders.delete(path);
              }
            });
          }
          selected = active ? { kind: "file", path: active } : null;
          render();
          focusTree();
        },
        { once: true }
      );
      deleteDialog.showModal();
      deleteDialog.querySelector("[data-code-delete-confirm]").focus();
    }

    function handlerHint() {
      return root.getAttribute("data-handler") || handlerFile.replace(/\.py$/, "") + ".*";
    }

    function targetFolder() {
      if (!selected) {
        return "";
      }
      return selected.kind === "folder" ? selected.path : dirname(selected.path);
    }

    function startEditing(mode) {
      if (mode === "rename") {
        if (!selected) {
          return;
        }
        editing = {
          mode: mode,
          kind: selected.kind,
          path: selected.path,
          folder: dirname(selected.path),
          error: "",
        };
      } else {
        var folder = targetFolder();
        if (folder) {
          expanded.add(folder);
        }
        editing = {
          mode: mode,
          kind: mode === "new-file" ? "file" : "folder",
          folder: folder,
          path: null,
          error: "",
        };
      }
      render();
    }

    function commitEditing(input) {
      var current = editing;
      if (!current) {
        return;
      }
      var name = input.value.trim().replace(/\/+$/, "");
      if (!name || (current.mode === "rename" && joinPath(current.folder, name) === current.path)) {
        cancelEditing();
        return;
      }
      var path = joinPath(current.folder, name);
      var problem = validatePath(path, {
        kind: current.kind,
        ignore: current.mode === "rename" ? current.path : null,
      });
      if (problem) {
        current.error = problem;
        current.value = input.value;
        render();
        return;
      }
      editing = null;
      if (current.mode === "new-file") {
        createFile(path);
        return;
      }
      if (current.mode === "new-folder") {
        createFolder(path);
      } else if (current.kind === "file") {
        renameFile(current.path, path);
      } else {
        renameFolder(current.path, path);
      }
      recomputeChanges();
      render();
      focusTree();
    }

    function cancelEditing() {
      editing = null;
      render();
      focusTree();
    }

    // -------------------------------------------------- rendering

    function queueRender() {
      if (renderQueued) {
        return;
      }
      renderQueued = true;
      window.requestAnimationFrame(function () {
        renderQueued = false;
        render();
      });
    }

    function buildTree() {
      var top = { path: "", folders: new Map(), files: [] };
      function folderNode(path) {
        if (!path) {
          return top;
        }
        var parent = folderNode(dirname(path));
        var name = basename(path);
        if (!parent.folders.has(name)) {
          parent.folders.set(name, { path: path, folders: new Map(), files: [] });
        }
        return parent.folders.get(name);
      }
      folders.forEach(folderNode);
      files.forEach(function (_, path) {
        folderNode(dirname(path)).files.push(path);
      });
      return top;
    }

    function icon(className) {
      var node = element("span", "ide-icon " + className);
      node.setAttribute("aria-hidden", "true");
      return node;
    }

    function inputRow(depth) {
      var item = element("li", "ide-tree-edit");
      item.setAttribute("role", "none");
      var row = element("div", "ide-row");
      row.style.setProperty("--depth", depth);
      row.appendChild(element("span", "ide-chevron is-spacer"));
      row.appendChild(
        icon(editing.kind === "folder" ? "ide-icon-folder" : "ide-file-icon is-" + languageOf(
          editing.value || "").id)
      );
      var input = element("input", "ide-tree-input");
      input.type = "text";
      input.spellcheck = false;
      input.setAttribute("autocomplete", "off");
      input.setAttribute(
        "aria-label",
        editing.mode === "rename"
          ? "New name for " + editing.path
          : editing.kind === "file" ? "Name of the new file" : "Name of the new folder"
      );
      if (editing.value !== undefined) {
        input.value = editing.value;
      } else if (editing.mode === "rename") {
        input.value = basename(editing.path);
      }
      row.appendChild(input);
      item.appendChild(row);
      if (editing.error) {
        var error = element("p", "ide-tree-error", editing.error);
        error.id = "code-tree-error";
        error.setAttribute("role", "alert");
        error.style.setProperty("--depth", depth);
        input.setAttribute("aria-invalid", "true");
        input.setAttribute("aria-describedby", error.id);
        item.appendChild(error);
      }
      var settled = false;
      input.addEventListener("keydown", function (event) {
        var isSave = (event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "s";
        if (event.key === "Enter" || isSave) {
          event.preventDefault();
          settled = true;
          commitEditing(input);
        } else if (event.key === "Escape") {
          event.preventDefault();
          settled = true;
          cancelEditing();
        }
      });
      input.addEventListener("input", function () {
        editing.value = input.value;
      });
      input.addEventListener("blur", function () {
        if (!settled && editing && input.isConnected) {
          settled = true;
          if (input.value.trim()) {
            commitEditing(input);
          } else {
            cancelEditing();
          }
        }
      });
      return item;
    }

    function treeRow(kind, path, depth) {
      var item = element("li", "ide-tree-item");
      item.setAttribute("role", "treeitem");
      item.setAttribute("data-kind", kind);
      item.setAttribute("data-path", path);
      item.tabIndex = -1;
      var isSelected = selected && selected.kind === kind && selected.path === path;
      item.setAttribute("aria-selected", isSelected ? "true" : "false");
      var row = element("div", "ide-row");
      row.style.setProperty("--depth", depth);
      if (kind === "folder") {
        var open = expanded.has(path);
        item.setAttribute("aria-expanded", open ? "true" : "false");
        row.appendChild(element("span", "ide-chevron" + (open ? " is-open" : "")));
        row.appendChild(icon(open ? "ide-icon-folder-open" : "ide-icon-folder"));
      } else {
        row.appendChild(element("span", "ide-chevron is-spacer"));
        row.appendChild(icon("ide-file-icon is-" + languageOf(path).id));
        if (path === active) {
          item.classList.add("is-active");
        }
      }
      row.appendChild(element("span", "ide-row-name", basename(path)));
      if (kind === "file" && path === handlerFile) {
        var tag = element("span", "ide-row-tag", "handler");
        tag.title = "This file holds the function's handler";
        row.appendChild(tag);
      }
      var isChangedRow = kind === "file" ? changed.has(path) : folderChanged(path);
      if (isChangedRow) {
        item.classList.add("is-changed");
        var dot = element("span", "ide-changed-dot");
        dot.title = kind === "file" ? (deployed.has(path) ? "Modified" : "New file") : "Holds changes";
        row.appendChild(dot);
      }
      item.appendChild(row);
      return item;
    }

    function renderFolder(node, depth, list) {
      var isNewHere =
        editing && editing.mode !== "rename" && editing.folder === node.path;
      if (isNewHere) {
        list.appendChild(inputRow(depth));
      }
      var folderNames = Array.from(node.folders.keys()).sort(byName);
      folderNames.forEach(function (name) {
        var child = node.folders.get(name);
        var isRenamed = editing && editing.mode === "rename" && editing.path === child.path;
        var item = isRenamed ? inputRow(depth) : treeRow("folder", child.path, depth);
        list.appendChild(item);
        if (expanded.has(child.path)) {
          var group = element("ul", "ide-tree-group");
          group.setAttribute("role", "group");
          renderFolder(child, depth + 1, group);
          if (group.childNodes.length) {
            item.appendChild(group);
          }
        }
      });
      node.files.sort(function (a, b) {
        return byName(basename(a), basename(b));
      });
      node.files.forEach(function (path) {
        var isRenamed = editing && editing.mode === "rename" && editing.path === path;
        list.appendChild(isRenamed ? inputRow(depth) : treeRow("file", path, depth));
      });
    }

    function renderTree() {
      var hadFocus = tree.contains(document.activeElement) &&
        document.activeElement.classList.contains("ide-tree-item");
      tree.replaceChildren();
      renderFolder(buildTree(), 0, tree);
      var input = tree.querySelector(".ide-tree-input");
      if (input) {
        input.focus();
        var name = input.value;
        var dot = editing.kind === "file" ? name.lastIndexOf(".") : -1;
        input.setSelectionRange(0, dot > 0 ? dot : name.length);
      }
      var items = visibleItems();
      var current = items.filter(function (item) {
        return item.getAttribute("aria-selected") === "true";
      })[0] || items[0];
      if (current) {
        current.tabIndex = 0;
        if (hadFocus && !editing) {
          current.focus();
        }
      }
      var problems = [];
      if (handlerFile && !files.has(handlerFile)) {
        problems.push(
          "The handler file " + handlerFile + " is not in the package: invocations will fail " +
          "until it is back, or until the handler in Runtime settings names another file."
        );
      }
      if (!files.size) {
        problems.push("The package is empty. Create a file before you deploy.");
      }
      treeHint.textContent = problems.join(" ");
      treeHint.hidden = problems.length === 0;
    }

    function renderTabs() {
      tabBar.replaceChildren();
      var names = {};
      tabs.forEach(function (path) {
        names[basename(path)] = (names[basename(path)] || 0) + 1;
      });
      tabs.forEach(function (path) {
        var tab = element("div", "ide-tab");
        var isActive = path === active;
        tab.setAttribute("role", "tab");
        tab.setAttribute("aria-selected", isActive ? "true" : "false");
        tab.setAttribute("data-path", path);
        tab.tabIndex = isActive ? 0 : -1;
        tab.title = path + (changed.has(path) ? " (not deployed)" : "");
        if (isActive) {
          tab.classList.add("is-active");
        }
        if (changed.has(path)) {
          tab.classList.add("is-changed");
        }
        tab.appendChild(icon("ide-file-icon is-" + languageOf(path).id));
        tab.appendChild(element("span", "ide-tab-name", basename(path)));
        if (names[basename(path)] > 1 && dirname(path)) {
          tab.appendChild(element("span", "ide-tab-folder", dirname(path)));
        }
        var close = element("button", "ide-tab-close");
        close.type = "button";
        close.tabIndex = -1;
        close.setAttribute("aria-label", "Close " + path);
        close.title = "Close";
        tab.appendChild(close);
        tabBar.appendChild(tab);
      });
      var activeTab = tabBar.querySelector(".ide-tab.is-active");
      if (activeTab) {
        activeTab.scrollIntoView({ block: "nearest", inline: "nearest" });
      }
    }

    function renderEditorPane() {
      var showEditor = Boolean(active);
      editorHost.hidden = !showEditor;
      emptyPane.hidden = showEditor;
      languageLabel.textContent = showEditor ? languageOf(active).name : "";
      languageLabel.hidden = !showEditor;
      positionLabel.hidden = !showEditor;
      endOfLineLabel.hidden = !showEditor;
      if (showEditor) {
        endOfLineLabel.textContent = cm.getDoc().lineSeparator() === "\r\n" ? "CRLF" : "LF";
      }
      if (showEditor) {
        updatePosition();
      }
    }

    function renderStatus() {
      var dirty = isDirty();
      statusLabel.hidden = !dirty;
      if (deployButton) {
        deployButton.disabled = !dirty || deploying;
        deployButton.textContent = deploying ? "Deploying…" : "Deploy";
      }
      root.classList.toggle("is-dirty", dirty);
      summaryLabel.textContent = changeSummary();
    }

    function changeSummary() {
      var added = 0;
      var modified = 0;
      changed.forEach(function (path) {
        if (deployed.has(path)) {
          modified += 1;
        } else {
          added += 1;
        }
      });
      var parts = [];
      if (modified) {
        parts.push(modified + " modified");
      }
      if (added) {
        parts.push(added + " new");
      }
      var removed = removedCount();
      if (removed) {
        parts.push(removed + " deleted");
      }
      return parts.length ? "Not deployed: " + parts.join(", ") : "No changes";
    }

    function render() {
      renderTree();
      renderTabs();
      renderEditorPane();
      renderStatus();
    }

    function updatePosition() {
      var cursor = cm.getCursor();
      var text = "Ln " + (cursor.line + 1) + ", Col " + (cursor.ch + 1);
      var selection = cm.getSelection();
      if (selection) {
        text += " (" + selection.length + " selected)";
      }
      positionLabel.textContent = text;
    }

    cm.on("cursorActivity", updatePosition);
    if (window.ResizeObserver) {
      new window.ResizeObserver(function () {
        cm.refresh();
      }).observe(editorHost);
    }

    // -------------------------------------------------- deploy

    function deploy() {
      if (readOnly || deploying || !isDirty()) {
        return;
      }
      if (editing) {
        cancelEditing();
      }
      var snapshot = {};
      files.forEach(function (entry, path) {
        snapshot[path] = textOf(entry);
      });
      if (!Object.keys(snapshot).length) {
        showAlert("error", "A deployment package needs at least one file. Create a file first.");
        return;
      }
      deploying = true;
      clearAlerts();
      renderStatus();
      fetch(root.getAttribute("data-deploy-url"), {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/json",
          "X-CSRFToken": csrfToken(),
        },
        body: JSON.stringify({ files: snapshot, base_code_sha256: baseSha }),
      })
        .then(function (response) {
          var type = response.headers.get("Content-Type") || "";
          var body = type.indexOf("application/json") >= 0
            ? response.json().catch(function () { return null; })
            : Promise.resolve(null);
          return body.then(function (data) {
            return { response: response, data: data };
          });
        })
        .then(function (result) {
          var data = result.data;
          if (result.response.ok && data) {
            // Edits made while the request was in flight stay marked as changes.
            deployed = new Map(Object.entries(snapshot));
            baseSha = data.code_sha256;
            root.setAttribute("data-code-sha256", baseSha);
            updateProperties(data);
            showAlert("success", data.message);
          } else if (data && data.message) {
            if (result.response.status === 409 && data.code_sha256) {
              baseSha = data.code_sha256;
            }
            showAlert("error", data.message);
          } else {
            showAlert(
              "error",
              "The deploy failed (HTTP " + result.response.status + "). If your session has " +
                "expired, sign in again in another tab, then deploy: your changes are still here."
            );
          }
        })
        .catch(function (error) {
          showAlert(
            "error",
            "Could not reach Stratus to deploy (" + error.message + "). Your changes are " +
              "still in the editor."
          );
        })
        .finally(function () {
          deploying = false;
          recomputeChanges();
          render();
        });
    }

    // -------------------------------------------------- events

    function visibleItems() {
      return Array.from(tree.querySelectorAll(".ide-tree-item"));
    }

    function focusTree() {
      var item = tree.querySelector('.ide-tree-item[aria-selected="true"]') ||
        tree.querySelector(".ide-tree-item");
      if (item) {
        item.focus();
      }
    }

    function activateItem(item, focusEditor) {
      var path = item.getAttribute("data-path");
      if (item.getAttribute("data-kind") === "folder") {
        selected = { kind: "folder", path: path };
        if (expanded.has(path)) {
          expanded.delete(path);
        } else {
          expanded.add(path);
        }
        render();
        focusTree();
      } else {
        openFile(path, focusEditor);
        if (!focusEditor) {
          focusTree();
        }
      }
    }

    tree.addEventListener("click", function (event) {
      var item = event.target.closest(".ide-tree-item");
      if (item && !event.target.closest(".ide-tree-edit")) {
        event.stopPropagation();
        activateItem(item, false);
      }
    });

    tree.addEventListener("dblclick", function (event) {
      var item = event.target.closest('.ide-tree-item[data-kind="file"]');
      if (item) {
        cm.focus();
      }
    });

    tree.addEventListener("keydown", function (event) {
      var item = event.target.closest(".ide-tree-item");
      if (!item || event.target !== item) {
        return;
      }
      var items = visibleItems();
      var index = items.indexOf(item);
      var kind = item.getAttribute("data-kind");
      var path = item.getAttribute("data-path");
      var move = function (target) {
        if (target) {
          selected = { kind: target.getAttribute("data-kind"), path: target.getAttribute("data-path") };
          items.forEach(function (node) {
            node.tabIndex = -1;
            node.setAttribute("aria-selected", "false");
          });
          target.tabIndex = 0;
          target.setAttribute("aria-selected", "true");
          target.focus();
        }
      };
      switch (event.key) {
        case "ArrowDown":
          move(items[index + 1]);
          break;
        case "ArrowUp":
          move(items[index - 1]);
          break;
        case "Home":
          move(items[0]);
          break;
        case "End":
          move(items[items.length - 1]);
          break;
        case "ArrowRight":
          if (kind === "folder" && !expanded.has(path)) {
            activateItem(item, false);
          } else if (kind === "folder") {
            move(items[index + 1]);
          }
          break;
        case "ArrowLeft":
          if (kind === "folder" && expanded.has(path)) {
            activateItem(item, false);
          } else {
            var parent = item.parentElement.closest(".ide-tree-item");
            move(parent);
          }
          break;
        case "Enter":
        case " ":
          activateItem(item, event.key === "Enter" && kind === "file");
          break;
        case "F2":
          selected = { kind: kind, path: path };
          startEditing("rename");
          break;
        case "Delete":
          selected = { kind: kind, path: path };
          deleteSelected();
          break;
        default:
          return;
      }
      event.preventDefault();
    });

    tree.addEventListener("contextmenu", function (event) {
      var item = event.target.closest(".ide-tree-item");
      if (item) {
        selected = { kind: item.getAttribute("data-kind"), path: item.getAttribute("data-path") };
        render();
      }
      openContextMenu(event, Boolean(item));
    });

    root.querySelector("[data-code-root]").addEventListener("click", function () {
      selected = null;
      render();
    });

    tabBar.addEventListener("click", function (event) {
      var tab = event.target.closest(".ide-tab");
      if (!tab) {
        return;
      }
      var path = tab.getAttribute("data-path");
      if (event.target.closest(".ide-tab-close")) {
        closeTab(path);
      } else {
        openFile(path, true);
      }
    });

    tabBar.addEventListener("auxclick", function (event) {
      var tab = event.target.closest(".ide-tab");
      if (tab && event.button === 1) {
        event.preventDefault();
        closeTab(tab.getAttribute("data-path"));
      }
    });

    tabBar.addEventListener("keydown", function (event) {
      var tab = event.target.closest(".ide-tab");
      if (!tab) {
        return;
      }
      var index = tabs.indexOf(tab.getAttribute("data-path"));
      var target = null;
      if (event.key === "ArrowRight") {
        target = tabs[(index + 1) % tabs.length];
      } else if (event.key === "ArrowLeft") {
        target = tabs[(index - 1 + tabs.length) % tabs.length];
      } else if (event.key === "Enter") {
        cm.focus();
      } else if (event.key === "Delete") {
        closeTab(tabs[index]);
        var next = tabBar.querySelector(".ide-tab.is-active");
        if (next) {
          next.focus();
        }
      } else {
        return;
      }
      event.preventDefault();
      if (target) {
        openFile(target, false);
        tabBar.querySelector('.ide-tab[data-path="' + CSS.escape(target) + '"]').focus();
      }
    });

    root.querySelectorAll("[data-code-action]").forEach(function (button) {
      button.addEventListener("click", function () {
        runAction(button.getAttribute("data-code-action"));
      });
    });

    function runAction(action) {
      if (readOnly) {
        return;
      }
      if (action === "delete") {
        deleteSelected();
      } else {
        startEditing(action);
      }
    }

    // -------------------------------------------------- context menu

    var menu = element("div", "ide-context-menu");
    menu.setAttribute("role", "menu");
    menu.hidden = true;
    [
      ["new-file", "New file"],
      ["new-folder", "New folder"],
      ["rename", "Rename", "F2"],
      ["delete", "Delete", "Delete"],
    ].forEach(function (entry) {
      var item = element("button", "ide-context-item");
      item.type = "button";
      item.setAttribute("role", "menuitem");
      item.setAttribute("data-menu-action", entry[0]);
      item.appendChild(element("span", "", entry[1]));
      if (entry[2]) {
        item.appendChild(element("kbd", "", entry[2]));
      }
      menu.appendChild(item);
    });
    root.querySelector("[data-code-ide]").appendChild(menu);

    function openContextMenu(event, onItem) {
      event.preventDefault();
      menu.querySelectorAll('[data-menu-action="rename"], [data-menu-action="delete"]')
        .forEach(function (item) {
          item.disabled = !onItem;
        });
      var box = root.querySelector("[data-code-ide]").getBoundingClientRect();
      menu.hidden = false;
      var left = Math.min(event.clientX - box.left, box.width - menu.offsetWidth - 4);
      var top = Math.min(event.clientY - box.top, box.height - menu.offsetHeight - 4);
      menu.style.left = Math.max(0, left) + "px";
      menu.style.top = Math.max(0, top) + "px";
      menu.querySelector("button:not([disabled])").focus();
    }

    function closeContextMenu() {
      menu.hidden = true;
    }

    menu.addEventListener("click", function (event) {
      var item = event.target.closest("[data-menu-action]");
      if (item && !item.disabled) {
        closeContextMenu();
        runAction(item.getAttribute("data-menu-action"));
      }
    });
    menu.addEventListener("keydown", function (event) {
      var items = Array.from(menu.querySelectorAll("button:not([disabled])"));
      var index = items.indexOf(document.activeElement);
      if (event.key === "Escape") {
        closeContextMenu();
        focusTree();
      } else if (event.key === "ArrowDown") {
        items[(index + 1) % items.length].focus();
      } else if (event.key === "ArrowUp") {
        items[(index - 1 + items.length) % items.length].focus();
      } else {
        return;
      }
      event.preventDefault();
    });
    document.addEventListener("mousedown", function (event) {
      if (!menu.hidden && !menu.contains(event.target)) {
        closeContextMenu();
      }
    });
    menu.addEventListener("focusout", function (event) {
      if (!menu.contains(event.relatedTarget)) {
        closeContextMenu();
      }
    });

    // -------------------------------------------------- keyboard shortcuts

    document.addEventListener("keydown", function (event) {
      if ((event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === "s") {
        event.preventDefault();
        if (!document.querySelector("dialog[open]")) {
          deploy();
        }
      }
    });
    if (deployButton) {
      deployButton.addEventListener("click", deploy);
    }

    // -------------------------------------------------- start

    var first = files.has(handlerFile) ? handlerFile : Array.from(files.keys()).sort(byName)[0];
    if (first) {
      openFile(first, false);
    } else {
      render();
    }
  }

  setUpUpload();
  if (filesScript && window.CodeMirror) {
    startEditor(JSON.parse(filesScript.textContent));
  }
})();
