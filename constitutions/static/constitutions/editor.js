/* Constitution editor: add principles/examples to a Django formset, move principles up and down (the
   formset's ORDER fields follow the page order), dim removed ones. Also: the preview page reloads the prompt
   list when another prompt set is picked. Plain JavaScript, no dependencies. */
(function () {
  "use strict";

  function items(container) {
    return Array.prototype.filter.call(container.children, function (el) { return el.hasAttribute("data-form"); });
  }

  function renumber(container) {
    items(container).forEach(function (el, i) {
      var order = el.querySelector('input[name$="-ORDER"]');
      if (order) { order.value = i + 1; }
      var pos = el.querySelector(".pos");
      if (pos) { pos.textContent = i + 1; }
    });
  }

  function addForm(prefix) {
    var container = document.getElementById(prefix);
    var total = document.getElementById("id_" + prefix + "-TOTAL_FORMS");
    var template = document.getElementById(prefix + "-template");
    var html = template.innerHTML.replace(/__prefix__/g, total.value);
    total.value = parseInt(total.value, 10) + 1;
    container.insertAdjacentHTML("beforeend", html);
    renumber(container);
    var first = container.lastElementChild.querySelector("input[type=text], textarea");
    if (first) { first.focus(); }
  }

  function move(button) {
    var item = button.closest("[data-form]");
    var container = item.parentElement;
    if (button.getAttribute("data-move") === "up" && item.previousElementSibling) {
      container.insertBefore(item, item.previousElementSibling);
    } else if (button.getAttribute("data-move") === "down" && item.nextElementSibling) {
      container.insertBefore(item.nextElementSibling, item);
    }
    renumber(container);
    button.focus();
  }

  document.addEventListener("click", function (event) {
    var add = event.target.closest("[data-add]");
    if (add) { addForm(add.getAttribute("data-add")); return; }
    var mover = event.target.closest("[data-move]");
    if (mover) { move(mover); }
  });

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches('input[name$="-DELETE"]')) {
      target.closest("[data-form]").classList.toggle("removed", target.checked);
    }
    if (target.matches("[data-reload-on-change]")) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = "reload";
      input.value = "1";
      target.form.appendChild(input);
      target.form.submit();
    }
  });
})();
