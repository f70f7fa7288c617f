// Starts Swagger UI on the spec this service serves. Settings come from
// data attributes, since the page's CSP allows no inline script.
(function () {
  var el = document.getElementById('swagger-ui');
  window.ui = SwaggerUIBundle({
    url: el.dataset.spec,
    dom_id: '#swagger-ui',
    deepLinking: true,
    // Off unless DOCS_PERSIST_AUTHORIZATION=true: a token in localStorage
    // outlives the tab and is readable by any script on this origin.
    persistAuthorization: el.dataset.persist === 'true',
    validatorUrl: null, // the default would call a public validator: stay offline
    displayRequestDuration: true
  });
})();
