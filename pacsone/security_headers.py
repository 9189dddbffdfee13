"""Headers on every answer the application makes (static files are served before this, by
whitenoise, and keep their own caching):

- Content-Security-Policy: scripts only from our own static files (no inline script, no
  `on...=` handler, no `javascript:` link: templates/ has none, a test parses them); styles
  from our files and inline `style` attributes ('unsafe-inline' for style-src only: the pages
  use a few inline styles, which cannot run code); images also from data: and blob: URLs
  (rendered frames); no plugins, no framing, forms post only to us.
- Cache-Control: no-store: pages and API answers carry patient data; no browser or proxy
  cache may keep them (a shared workstation's back button included). A view that sets its own
  Cache-Control keeps it: rendered frames and thumbnails are `private` (the user's browser
  only, never a proxy) for a short time, so that scrolling through a series stays fast.
"""

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        if "Cache-Control" not in response:
            response["Cache-Control"] = "no-store"
        return response
