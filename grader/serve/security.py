"""What stands between the internet and the class folder: sessions, CSRF, headers, the body cap.

- **Sessions** are kept by the server (``SessionBook``: each session's id, hashed, with its owner
  and end, in ``.gradelab/sessions.json``, mode 0600, so they outlive a restart); the cookie is
  that id, signed (itsdangerous, with a key made once per class folder and kept in
  ``.gradelab/secret.key``, mode 0600): ``HttpOnly`` (no script reads it), ``SameSite=Strict``
  (no other site's page sends it), ``Secure`` when the server is reached over https. Logging out
  removes the session from the book, so a copied cookie stops working with it; a session is
  stamped with the token it was opened with, so reissuing a token ends its sessions too. A cookie
  that does not verify, or whose session is not in the book, is no session. Cookie names carry the
  app and its port (``gradelab_session_serve_8000``), so ``gradelab serve`` and ``gradelab review``
  on one host do not log each other out.
- **Logins** are rate-limited (``LoginLimiter``): failed attempts per address, and attempts per
  token sent, each in a sliding window; past the limit a login is refused with 429 before the
  token is looked at.
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

import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections import deque
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

SESSION_COOKIE = "gradelab_session"  # the prefix: ``cookie_names`` adds the app and its port
LOGIN_COOKIE = "gradelab_login"
SECRET_FILE = "secret.key"
SESSIONS_FILE = "sessions.json"
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
    sid: str = ""  # the session's id in the server's book (the cookie holds it, signed)


def cookie_names(app: str, port: int) -> tuple[str, str]:
    """The session's and the login form's cookie names for one app on one port: cookies are per
    host, not per port, so two apps on one host need names of their own."""
    return f"{SESSION_COOKIE}_{app}_{port}", f"{LOGIN_COOKIE}_{app}_{port}"


def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


class SessionBook:
    """The live sessions, by the SHA-256 of their id (whoever reads the file cannot present one):
    ``None`` as ``path`` keeps them in memory only (they end with the process)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._live: dict[str, dict[str, object]] = {}
        if path is not None:
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
                self._live = {k: v for k, v in loaded.items() if isinstance(v, dict)} if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                self._live = {}

    def _save(self) -> None:
        if self.path is None:
            return
        from grader.atomic import write_atomic

        write_atomic(self.path, json.dumps(self._live))  # 0600 (mkstemp); no process-wide umask

    def add(self, session: Session, max_age_s: int) -> None:
        now = time.time()
        with self._lock:
            self._live = {k: v for k, v in self._live.items() if float(v.get("until", 0)) > now}  # type: ignore[arg-type]
            self._live[_digest(session.sid)] = {"role": session.role, "student": session.student,
                                                "until": now + max_age_s}
            self._save()

    def live(self, session: Session) -> bool:
        entry = self._live.get(_digest(session.sid)) if session.sid else None
        return (entry is not None and entry.get("role") == session.role and entry.get("student") == session.student
                and float(entry.get("until", 0)) > time.time())  # type: ignore[arg-type]

    def remove(self, session: Session) -> None:
        with self._lock:
            if self._live.pop(_digest(session.sid), None) is not None:
                self._save()

    def remove_owner(self, role: str, student: str = "") -> int:
        """End every session of one owner (a token reissued): how many there were."""
        with self._lock:
            gone = [k for k, v in self._live.items() if v.get("role") == role and v.get("student") == student]
            for k in gone:
                del self._live[k]
            if gone:
                self._save()
            return len(gone)


class Sessions:
    def __init__(self, secret: bytes, *, max_age_s: int, secure: bool, book: SessionBook | None = None,
                 names: tuple[str, str] = (SESSION_COOKIE, LOGIN_COOKIE)) -> None:
        self._session = URLSafeTimedSerializer(secret, salt="gradelab-session")
        self._login = URLSafeTimedSerializer(secret, salt="gradelab-login-form")
        self.max_age_s = max_age_s
        self.secure = secure
        self.book = book if book is not None else SessionBook(None)
        self.cookie, self.login_cookie = names

    def read(self, request: Request) -> Session | None:
        cookie = request.cookies.get(self.cookie)
        if not cookie or len(cookie) > 4096:
            return None
        try:
            session = Session.model_validate(self._session.loads(cookie, max_age=self.max_age_s))
        except (BadSignature, ValidationError, TypeError, ValueError):
            return None
        return session if self.book.live(session) else None

    def start(self, response: Response, role: str, student: str, tv: str) -> Session:
        session = Session(role=role, student=student, csrf=secrets.token_urlsafe(24), tv=tv,
                          sid=secrets.token_urlsafe(24))
        self.book.add(session, self.max_age_s)
        response.set_cookie(self.cookie, self._session.dumps(session.model_dump()), max_age=self.max_age_s,
                            path="/", secure=self.secure, httponly=True, samesite="strict")
        response.delete_cookie(self.login_cookie, path="/", secure=self.secure, httponly=True, samesite="strict")
        return session

    def end(self, response: Response, session: Session | None = None) -> None:
        """Log out: the session leaves the book (a copy of its cookie is no session any more)."""
        if session is not None:
            self.book.remove(session)
        response.delete_cookie(self.cookie, path="/", secure=self.secure, httponly=True, samesite="strict")

    def login_token(self, request: Request) -> str:
        """The login form's CSRF token (there is no session yet): the one its cookie holds, or a
        new one; ``keep_login_token`` puts it in the cookie, the form repeats it."""
        return self.login_token_of(request) or secrets.token_urlsafe(24)

    def keep_login_token(self, response: Response, token: str) -> None:
        response.set_cookie(self.login_cookie, self._login.dumps(token), max_age=3600, path="/", secure=self.secure,
                            httponly=True, samesite="strict")

    def login_token_of(self, request: Request) -> str | None:
        cookie = request.cookies.get(self.login_cookie)
        if not cookie or len(cookie) > 512:
            return None
        try:
            value = self._login.loads(cookie, max_age=3600)
        except BadSignature:
            return None
        return value if isinstance(value, str) else None


class LoginLimiter:
    """How many logins an address may fail, and how many attempts one token may be sent in, per
    window: a guesser gets ``per_address`` tries, not 200 a second; a token passed around (or a
    script logging in with it in a loop) gets ``per_token``. Counted in memory (a restart forgets:
    a guess still costs the 192 bits a token holds)."""

    def __init__(self, *, per_address: int = 20, per_token: int = 20, window_s: float = 600.0) -> None:
        self.per_address, self.per_token, self.window_s = per_address, per_token, window_s
        self._failed: dict[str, deque[float]] = {}
        self._tokens: dict[str, deque[float]] = {}

    def _recent(self, table: dict[str, deque[float]], key: str, now: float) -> deque[float]:
        times = table.setdefault(key, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if len(table) > 10_000:  # a flood of addresses: forget those with nothing recent
            for k in [k for k, v in table.items() if not v or v[-1] <= now - self.window_s]:
                del table[k]
            table.setdefault(key, times)
        return times

    def wait_s(self, address: str, token: str) -> int:
        """Seconds before this address may try this token (0: now); the attempt is counted for the token."""
        now = time.monotonic()
        failed = self._recent(self._failed, address, now)
        sent = self._recent(self._tokens, hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest(), now)
        waits = []
        if len(failed) >= self.per_address:
            waits.append(failed[0] + self.window_s - now)
        if len(sent) >= self.per_token:
            waits.append(sent[0] + self.window_s - now)
        if waits:
            return max(1, int(max(waits)) + 1)
        sent.append(now)
        return 0

    def failed(self, address: str) -> None:
        self._recent(self._failed, address, time.monotonic()).append(time.monotonic())


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
