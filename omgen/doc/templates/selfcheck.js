(function () {
  "use strict";
  var errors = [];
  window.addEventListener("error", function (event) { errors.push(String(event.message)); });
  function check() {
    var terms = JSON.parse(document.getElementById("om-terms").textContent);
    var missing = [], withMath = 0, rendered = 0, native = 0, raw = 0;
    terms.forEach(function (name) {
      var entry = document.getElementById("term-" + name);
      if (!entry) { missing.push(name); return; }
      var math = entry.querySelector(".math math");
      if (math) {
        withMath += 1;
        var box = math.getBoundingClientRect();
        if (box.width > 0 && box.height > 0) { rendered += 1; }
        if (getComputedStyle(math).display.indexOf("math") >= 0) { native += 1; }
      }
      if (entry.querySelector(".raw-latex")) { raw += 1; }
    });
    var broken = [], links = document.querySelectorAll("a[href]"), external = [];
    Array.prototype.forEach.call(links, function (a) {
      var href = a.getAttribute("href");
      if (href.charAt(0) === "#") {
        if (!document.getElementById(decodeURIComponent(href.slice(1)))) { broken.push(href); }
      } else if (external.indexOf(href) < 0) { external.push(href); }
    });
    var summary = {terms: terms.length, missing_panels: missing, terms_with_math: withMath, math_rendered: rendered,
                   math_native: native, raw_latex: raw, links: links.length, broken_links: broken,
                   other_links: external, errors: errors};
    document.getElementById("om-selfcheck").textContent = JSON.stringify(summary);
    if (broken.length) { console.error("omgen sheet: broken links: " + broken.join(" ")); }
    if (missing.length) { console.error("omgen sheet: terms without an entry: " + missing.join(" ")); }
  }
  if (document.readyState === "complete") { check(); } else { window.addEventListener("load", check); }
})();
