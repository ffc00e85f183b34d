// Copy buttons: copy the text of the element named by data-copy. Without JavaScript the buttons
// stay hidden (class js-only) and the text is selectable as usual.
document.documentElement.classList.add("js");
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  const text = source.value !== undefined ? source.value : source.textContent;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // Clipboard refused (no secure context): select the text so Ctrl-C works.
    const range = document.createRange();
    range.selectNodeContents(source);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    if (source.select) source.select();
  }
  const label = button.firstChild.textContent;
  button.firstChild.textContent = "Copied";
  setTimeout(() => { button.firstChild.textContent = label; }, 1500);
});

// ISO date fields (console/widgets.py) search when complete, on `change` (Enter or leaving the
// field), not on every keystroke: a half-typed date would flash an error in the results.
document.addEventListener("input", (event) => {
  if (event.target.matches && event.target.matches("[data-iso-date]")) event.stopPropagation();
}, true);
