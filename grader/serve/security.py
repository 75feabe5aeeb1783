"""What stands between the internet and the class folder: sessions, CSRF, headers, the body cap.

- **Sessions** are signed cookies (itsdangerous, with a key made once per class folder and kept in
  ``.gradelab/secret.key``, mode 0600): ``HttpOnly`` (no script reads them), ``SameSite=Strict``
  (no other site's page sends them), ``Secure`` when the server is reached over https, and
  stamped with the token they were opened with, so reissuing a student's token ends their
  sessions. A cookie that does not verify is no session.
- **CSRF**: every form carries a token that a cross-site page cannot read — the session's, or,
  on the login form, a signed one of its own cookie — compared in constant time; a request whose
  ``Origin`` names another host is refused as well.
- **Headers** on every response: a Content-Security-Policy without ``unsafe-inline`` (scripts
  and styles only from this server's ``/static``), ``nosniff``, frames denied, no referrer sent
  to another site (``same-origin``: with ``no-referrer`` a browser sends ``Origin: null`` on its
  own forms, which the origin check must refuse), no caching of pages.
- **The body cap**: a request body longer than its route allows is refused when its declared
  length says so, before a byte is read, and otherwise as soon as the bytes read pass the cap:
  the cap holds while the body streams in, not after it was read whole.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SESSION_COOKIE = "gradelab_session"
LOGIN_COOKIE = "gradelab_login"
SECRET_FILE = "secret.key"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), interest-cohort=()"),
]


def load_secret(state_dir: Path) -> bytes:
    """The key sessions are signed with: made once, kept with the class (so sessions outlive a
    restart), readable by root only."""
    path = Path(state_dir) / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as fh:
            key = fh.read()
        if len(key) >= 32:
            return key
        raise RuntimeError(f"{path} is damaged: remove it (every session ends)") from None
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


class Session(BaseModel):
    role: Literal["student", "instructor"]
    student: str = ""
    csrf: str
    tv: str  # the first characters of the token's stored hash: a reissued token ends the session


class Sessions:
    def __init__(self, secret: bytes, *, max_age_s: int, secure: bool) -> None:
        self._session = URLSafeTimedSerializer(secret, salt="gradelab-session")
        self._login = URLSafeTimedSerializer(secret, salt="gradelab-login-form")
        self.max_age_s = max_age_s
        self.secure = secure

    def read(self, request: Request) -> Session | None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie or len(cookie) > 4096:
            return None
        try:
            return Session.model_validate(self._session.loads(cookie, max_age=self.max_age_s))
        except (BadSignature, ValidationError, TypeError, ValueError):
            return None

    def start(self, response: Response, role: str, student: str, tv: str) -> Session:
        session = Session(role=role, student=student, csrf=secrets.token_urlsafe(24), tv=tv)
        response.set_cookie(SESSION_COOKIE, self._session.dumps(session.model_dump()), max_age=self.max_age_s,
                            path="/", secure=self.secure, httponly=True, samesite="strict")
        response.delete_cookie(LOGIN_COOKIE, path="/", secure=self.secure, httponly=True, samesite="strict")
        return session

    def end(self, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path="/", secure=self.secure, httponly=True, samesite="strict")

    def login_token(self, request: Request) -> str:
        """The login form's CSRF token (there is no session yet): the one its cookie holds, or a
        new one; ``keep_login_token`` puts it in the cookie, the form repeats it."""
        return self.login_token_of(request) or secrets.token_urlsafe(24)

    def keep_login_token(self, response: Response, token: str) -> None:
        response.set_cookie(LOGIN_COOKIE, self._login.dumps(token), max_age=3600, path="/", secure=self.secure,
                            httponly=True, samesite="strict")

    def login_token_of(self, request: Request) -> str | None:
        cookie = request.cookies.get(LOGIN_COOKIE)
        if not cookie or len(cookie) > 512:
            return None
        try:
            value = self._login.loads(cookie, max_age=3600)
        except BadSignature:
            return None
        return value if isinstance(value, str) else None


def same_token(expected: str | None, sent: object) -> bool:
    """A CSRF token as sent in a form, against the one expected, in constant time."""
    return bool(expected) and isinstance(sent, str) and hmac.compare_digest(str(expected).encode(), sent.encode())


def same_origin(request: Request) -> bool:
    """No ``Origin`` (a client that sends none) passes on to the token check; one that names
    another host, or ``null``, does not."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()


class SecurityHeaders:
    """Adds ``HEADERS`` to every response; pages are not cached, the static files are."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
                headers += [h for h in HEADERS if h[0] not in {k.lower() for k, _ in headers}]  # a page's own CSP kept
                headers.append((b"cache-control", b"public, max-age=3600" if static else b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class BodyLimit:
    """Refuses a request body longer than ``limit_for(scope)`` bytes with 413: before reading
    when its ``Content-Length`` says so, else as soon as the bytes read pass the cap. Raised from
    ``receive``, inside the route that reads the body: it stops reading there and the error page
    is the app's. A route reads no body before it has checked who is asking."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[Scope], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = next((v for k, v in scope.get("headers", []) if k == b"content-length"), b"0")
        received = 0

        async def capped() -> Message:
            nonlocal received
            if not declared.isdigit():
                raise HTTPException(400, "a Content-Length that is not a number")
            if int(declared) > limit:
                raise _too_long(limit)  # before a byte of the body is read
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _too_long(limit)
            return message

        await self.app(scope, capped, send)


def _too_long(limit: int) -> HTTPException:
    shown = f"{limit / 1_000_000:g} MB" if limit >= 1_000_000 else f"{limit // 1000} kB"
    return HTTPException(413, f"The upload is larger than the {shown} this course accepts. Hand in your code and "
                              "answer sheet only (no data sets, checkpoints or virtual environments).")
