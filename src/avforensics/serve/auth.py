"""API tokens: required whenever the server listens beyond loopback, or when started with --require-token.

A client presents its token as `Authorization: Bearer TOKEN`; the web page keeps it in an HttpOnly,
SameSite=Strict cookie set by its sign-in form. Only SHA-256 digests of tokens are stored (store.py).
Reading one job by its id needs no token: the id is an unguessable link that can be shared.
"""

from __future__ import annotations

from fastapi import HTTPException, Request
from starlette.requests import HTTPConnection

TOKEN_COOKIE = "avforensics_token"


def presented_token(request: HTTPConnection) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.cookies.get(TOKEN_COOKIE)


def is_authorised(request: HTTPConnection) -> bool:
    """A request or WebSocket that may use the service (always, when tokens are not required)."""
    service = request.app.state.service
    if not service.settings.token_required:
        return True
    token = presented_token(request)
    return token is not None and service.store.token_valid(token)


def require_token(request: Request) -> None:
    """FastAPI dependency: 401 unless the request carries a valid token (when tokens are required)."""
    if not is_authorised(request):
        reason = "this server requires an API token" if presented_token(request) is None else "invalid token"
        raise HTTPException(401, f"{reason}: send 'Authorization: Bearer TOKEN'",
                            headers={"WWW-Authenticate": "Bearer"})
