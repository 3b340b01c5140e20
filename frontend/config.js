// Deployment settings, read before the app starts. Not fingerprinted and served with
// `Cache-Control: no-cache`, so an environment can change it without a rebuild.
//
// apiBaseUrl: where the API lives. "" (the default) means this page's own origin, which is
// the case behind CloudFront (/api/* goes to the load balancer), in the compose stack (nginx
// forwards /api) and when `sage serve` serves this directory itself. To call an API on
// another origin, name it here (e.g. "http://127.0.0.1:3000") and add this page's origin to
// SAGE_CORS_ORIGINS.
window.SAGE_CONFIG = {
  apiBaseUrl: "",
};
