'use strict';
// Starts Swagger UI on the document the page names (data-spec-url), on this
// origin only. The key typed into Authorize stays in this tab's memory:
// persistAuthorization is off (no localStorage), the key travels in its
// header, never in an address, and its field is a password field that the
// browser does not remember. No validator badge (it would call another
// origin), no configuration read from the address (?url= would show any
// document under this origin's name).
(function () {
  const root = document.getElementById('docs');
  // Swagger UI renders the key field as plain text with autocomplete on:
  // hide it as the console does, and keep it out of the browser's history
  // of form entries.
  new MutationObserver(function () {
    for (const input of root.querySelectorAll('.auth-container input:not([data-hidden])')) {
      input.type = 'password';
      input.autocomplete = 'off';
      input.spellcheck = false;
      input.setAttribute('autocapitalize', 'off');
      input.dataset.hidden = '';
    }
  }).observe(root, { childList: true, subtree: true });
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: false,
    queryConfigEnabled: false,
    persistAuthorization: false,
    validatorUrl: null,
    withCredentials: false,
    displayRequestDuration: true,
  });
})();
