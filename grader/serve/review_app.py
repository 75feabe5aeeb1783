"""``gradelab review OUT``: the grading pages for a batch graded from the command line.

It serves on 127.0.0.1 only, for the one instructor at the keyboard: no roster, no token file.
It prints a one-time login link (a random key, compared in constant time, good once and for ten
minutes); following it opens a signed session (the same cookies, CSRF tokens and security headers
as ``gradelab serve``, with a key made for this process: sessions end with it).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from grader.checks.registry import BoundLab
from grader.results import SubmissionResult
from grader.review.store import ReviewStore
from grader.serve import review
from grader.serve.classroom import Who
from grader.serve.security import (
    BodyLimit,
    SecurityHeaders,
    Session,
    Sessions,
    same_token,
)

LINK_TTL_S = 600


@dataclass(frozen=True)
class Grader:
    """The caller of a page: what the serve templates expect of one."""

    who: Who
    session: Session
    name: str = "instructor"


class LoginLink:
    """A key good once, for ``LINK_TTL_S`` seconds."""

    def __init__(self) -> None:
        self.key = secrets.token_urlsafe(24)
        self.made = time.monotonic()
        self.used = False

    def redeem(self, sent: str | None) -> bool:
        if self.used or time.monotonic() - self.made > LINK_TTL_S or not same_token(self.key, sent):
            return False
        self.used = True
        return True


def batch_results(out: Path) -> Callable[[], dict[str, SubmissionResult]]:
    """Each result of the batch in ``out``, by its name, as written (the grades are merged apart)."""
    def load() -> dict[str, SubmissionResult]:
        found = {}
        for path in sorted(Path(out).glob("*.json")):
            try:
                result = SubmissionResult.model_validate_json(path.read_bytes())
            except (OSError, ValueError):
                continue
            found[path.stem] = result
        return found
    return load


def create_review_app(lab: BoundLab, out: Path) -> tuple[Starlette, LoginLink]:
    link = LoginLink()
    sessions = Sessions(secrets.token_bytes(32), max_age_s=12 * 3600, secure=False)
    desk = review.ReviewDesk(lab=lab, store=ReviewStore.beside(out), results=batch_results(out), out=Path(out))

    def auth(request: Request) -> Grader:
        session = sessions.read(request)
        if session is None or session.role != "instructor" or session.tv != "review":
            raise HTTPException(401, "Open the login link `gradelab review` printed (it works once).")
        return Grader(who=Who(role="instructor"), session=session)

    async def login(request: Request) -> Response:
        if not link.redeem(request.query_params.get("key")):
            raise HTTPException(403, "This login link was used already or has expired: run `gradelab review` "
                                     "again for a new one.")
        response = RedirectResponse("/review", 303)
        sessions.start(response, "instructor", "", "review")
        return response

    async def home(request: Request) -> Response:
        return RedirectResponse("/review", 303)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return Response(str(exc.detail), status_code=exc.status_code, media_type="text/plain")

    from grader.serve.app import STATIC, templates

    app = Starlette(routes=[Route("/", home), Route("/login", login), *review.routes(),
                            Mount("/static", app=_static(STATIC), name="static")],
                    middleware=[Middleware(SecurityHeaders), Middleware(BodyLimit, limit_for=lambda scope: 256 * 1024)],
                    exception_handlers={HTTPException: http_error})
    app.state.templates = templates()
    app.state.review_desk = desk
    app.state.review_auth = auth
    return app, link


def _static(folder: Path) -> StaticFiles:
    from starlette.staticfiles import StaticFiles

    return StaticFiles(directory=folder)


def run_review(lab: BoundLab, out: Path, port: int, on_ready: Callable[[str], None]) -> None:
    """Serve until Ctrl-C; ``on_ready(url)`` gets the login link."""
    import uvicorn

    app, link = create_review_app(lab, out)
    on_ready(f"http://127.0.0.1:{port}/login?key={link.key}")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", server_header=False)
