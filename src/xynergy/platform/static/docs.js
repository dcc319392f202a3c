// Starts Swagger UI on the docs page. A file of ours, not an inline script: the
// page's Content-Security-Policy runs scripts from this origin only.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  var config = JSON.parse(root.dataset.config);
  var several = config.urls.length > 1;
  window.ui = SwaggerUIBundle({
    dom_id: "#swagger-ui",
    url: several ? undefined : config.urls[0].url,
    urls: several ? config.urls : undefined,
    "urls.primaryName": config.primaryName,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    // The top bar's Swagger logo is an SVG with an inline <style>, which the
    // page's policy refuses; our own header names the site instead.
    plugins: [{ components: { Logo: function () { return null; } } }],
    // The standalone layout adds the top bar with a selector of the documents.
    layout: several ? "StandaloneLayout" : "BaseLayout",
    deepLinking: true,
    displayRequestDuration: true,
    showExtensions: true,
    // The default validator badge is an image from a third-party host.
    validatorUrl: null,
    // A link must not point this page at another host's document.
    queryConfigEnabled: false,
    // A key typed into Authorize stays in this tab's memory, not in localStorage.
    persistAuthorization: false
  });
})();
