"""Security headers on every response of the bot's web server (viewer page, webhook, health,
Slack events): what a browser may load, frame or sniff.

The viewer page is the only HTML the bot serves; LiveKit connects to the vendor's media
servers (wss) and pings regions over https, and media plays from MediaStreams. Nothing is
inline: the page's script and styles are files under /live/static/.
"""

from __future__ import annotations

from aiohttp import web

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob: mediastream:; connect-src 'self' wss: https:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
_INSTALLED: web.AppKey[bool] = web.AppKey("security_headers", bool)


async def _add_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def install_security_headers(app: web.Application) -> None:
    """Add the headers to every response of `app` (once, however often it is called)."""
    if app.get(_INSTALLED):
        return
    app[_INSTALLED] = True
    app.on_response_prepare.append(_add_headers)
