// Starts Swagger UI on /openapi.json. A file, not an inline script: the page's
// Content-Security-Policy allows scripts from this origin only. Authorization is kept in
// memory (persistAuthorization off), never in the browser's storage.
"use strict";
window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
    validatorUrl: null, // the default badge is an image from another origin
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    layout: "BaseLayout",
  });
});
