/* Drag-and-drop upload with a progress bar (datasets/dataset_detail.html).
 *
 * Progressive enhancement: without JavaScript the form posts normally and the server redirects to the job page.
 * With it, the file (dropped on the zone, or chosen with the real <input type=file>, which keeps keyboard access) is
 * posted with XMLHttpRequest, because fetch() reports no upload progress. The server answers with the job status
 * partial, which htmx then polls until the job ends.
 */
(function () {
  "use strict";

  function percent(loaded, total) {
    return total ? Math.floor((loaded / total) * 100) : 0;
  }

  function formatBytes(size) {
    var units = ["bytes", "KB", "MB", "GB"];
    var value = size;
    for (var i = 0; i < units.length; i++) {
      if (value < 1024 || i === units.length - 1) {
        return i === 0 ? value + " bytes" : value.toFixed(1) + " " + units[i];
      }
      value /= 1024;
    }
    return size + " bytes";
  }

  function setUp(panel) {
    var form = panel.querySelector("form[data-upload-form]");
    if (!form) { return; }
    var input = form.querySelector("input[type=file]");
    var zone = form.querySelector("[data-drop-zone]");
    var progressBox = form.querySelector("[data-upload-progress]");
    var bar = progressBox.querySelector("progress");
    var status = progressBox.querySelector("[data-upload-status]");
    var button = form.querySelector("[data-upload-button]");
    var result = document.getElementById(form.getAttribute("data-result"));
    var maxBytes = parseInt(input.getAttribute("data-max-bytes") || "0", 10);
    var token = form.querySelector("input[name=csrfmiddlewaretoken]").value;
    var busy = false;

    // The file is sent as soon as it is chosen or dropped; the button stays for keyboard users who prefer it.
    button.hidden = true;

    function show(html) {
      result.innerHTML = html;
      if (window.htmx) { window.htmx.process(result); }
    }

    function fail(message) {
      var box = document.createElement("div");
      box.className = "form-errors upload-error";
      box.setAttribute("role", "alert");
      var text = document.createElement("p");
      text.textContent = message;
      box.appendChild(text);
      result.replaceChildren(box);
    }

    function send(file) {
      if (busy || !file) { return; }
      if (maxBytes && file.size > maxBytes) {
        // The server refuses it too (before reading it); saying so now saves the wait.
        fail("The file is larger than the " + formatBytes(maxBytes) + " limit.");
        return;
      }
      busy = true;
      var data = new FormData();
      data.append("file", file, file.name);
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("HX-Request", "true");
      xhr.setRequestHeader("X-CSRFToken", token);
      progressBox.hidden = false;
      bar.max = 100;
      bar.value = 0;
      status.textContent = "Uploading " + file.name + "…";
      result.replaceChildren();
      zone.classList.add("uploading");

      xhr.upload.addEventListener("progress", function (event) {
        if (!event.lengthComputable) { return; }
        var done = percent(event.loaded, event.total);
        bar.value = done;
        bar.textContent = done + " %";
        status.textContent = "Uploading " + file.name + ": " + done + " %";
      });
      xhr.addEventListener("load", function () {
        busy = false;
        zone.classList.remove("uploading");
        input.value = "";
        if (xhr.status >= 200 && xhr.status < 300) {
          bar.value = 100;
          status.textContent = "Uploaded " + file.name + ". The ingestion job is below.";
          show(xhr.responseText);
        } else if (xhr.getResponseHeader("Content-Type") && xhr.getResponseHeader("Content-Type").indexOf("text/html") === 0 && xhr.status !== 403 && xhr.status < 500) {
          status.textContent = "The upload was refused.";
          show(xhr.responseText);
        } else {
          status.textContent = "The upload failed.";
          fail("The upload failed (HTTP " + xhr.status + "). Reload the page and try again.");
        }
      });
      xhr.addEventListener("error", function () {
        busy = false;
        zone.classList.remove("uploading");
        status.textContent = "The upload failed.";
        fail("The connection was lost during the upload. Try again.");
      });
      xhr.send(data);
    }

    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) {
        event.preventDefault();
        zone.classList.add("drag-over");
      });
    });
    ["dragleave", "dragend", "drop"].forEach(function (name) {
      zone.addEventListener(name, function () { zone.classList.remove("drag-over"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      var files = event.dataTransfer && event.dataTransfer.files;
      if (files && files.length) { send(files[0]); }
    });
    input.addEventListener("change", function () {
      if (input.files && input.files.length) { send(input.files[0]); }
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (input.files && input.files.length) { send(input.files[0]); } else { fail("Choose a file to upload."); }
    });
  }

  var panels = document.querySelectorAll("[data-upload-panel]");
  panels.forEach(setUp);
  if (panels.length) {
    // A file dropped next to the zone would make the browser leave the page to show it.
    ["dragover", "drop"].forEach(function (name) {
      window.addEventListener(name, function (event) {
        if (!event.target.closest || !event.target.closest("[data-drop-zone]")) { event.preventDefault(); }
      });
    });
  }
})();
