"""The web app: every route in one list, the middleware around them, and the lifespan that opens
the class (its lock, its queue, its grading workers) and closes it.

Starlette rather than FastAPI: the server renders HTML forms and a few downloads, not a JSON API,
so FastAPI's request-model injection and OpenAPI schema would be weight without use; Starlette
(which FastAPI is built on) gives routing, forms (python-multipart, streamed), static files,
Jinja2 templates and a test client, and every dependency stays an explicit call in the route.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import Scope

from grader.checks.registry import BoundLab
from grader.options import RunOptions
from grader.report.render import TEMPLATES, inline_markdown, show_value
from grader.serve import deps, instructor, review, student
from grader.serve.classroom import Classroom
from grader.serve.lti import launch as lti
from grader.serve.security import (
    SESSIONS_FILE,
    BodyLimit,
    LoginLimiter,
    SecurityHeaders,
    SessionBook,
    Sessions,
    cookie_names,
)
from grader.serve.settings import ServeSettings
from grader.serve.store import UnsafePath

log = logging.getLogger(__name__)
STATIC = TEMPLATES / "serve" / "static"
FORM_BYTES = 64 * 1024  # a login or logout form: a token and a CSRF token

routes = [
    Route("/", student.root, name="root"),
    Route("/login", student.login_form, methods=["GET"], name="login"),
    Route("/login", student.login, methods=["POST"]),
    Route("/logout", student.logout, methods=["POST"], name="logout"),
    Route("/upload", student.upload, methods=["POST"], name="upload"),
    Route("/attempts/{number:int}", student.attempt, name="attempt"),
    Route("/attempts/{number:int}/status", student.attempt_status, name="attempt_status"),
    Route("/attempts/{number:int}/feedback.pdf", student.feedback_pdf, name="feedback_pdf"),
    Route("/instructor", instructor.roster, name="roster"),
    Route("/instructor/class.csv", instructor.class_table, name="class_csv"),
    Route("/instructor/export", instructor.export, methods=["POST"], name="export"),
    Route("/instructor/similarity", instructor.similarity, name="similarity"),
    Route("/instructor/students/{sid:str}", instructor.student, name="student"),
    Route("/instructor/students/{sid:str}/attempts/{number:int}", instructor.attempt, name="student_attempt"),
    Route("/instructor/students/{sid:str}/attempts/{number:int}/upload.zip", instructor.upload, name="upload_zip"),
    Route("/instructor/students/{sid:str}/attempts/{number:int}/{name:str}", instructor.report, name="report"),
    *review.routes(),  # the grading pages of written answers (grader.serve.review)
    *lti.routes(),  # LTI 1.3 login, launch, keyset, NRPS roster (grader.serve.lti)
    Mount("/static", StaticFiles(directory=STATIC), name="static"),
]
UPLOAD_ROUTES = ("/upload", "/instructor/export")


def body_limit(settings: ServeSettings) -> Callable[[Scope], int]:
    def limit_for(scope: Scope) -> int:
        return settings.upload_bytes if scope.get("path") in UPLOAD_ROUTES else FORM_BYTES
    return limit_for


async def http_error(request: Request, exc: Exception) -> Response:
    """An error page (or JSON for the status route); a missing session sends a page to log in."""
    assert isinstance(exc, HTTPException)
    if isinstance(exc, deps.LoginRequired) and not request.url.path.endswith("/status"):
        return RedirectResponse("/login", 303)
    if request.url.path.endswith("/status"):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
    try:
        return deps.page(request, "error.html.j2", {"status": exc.status_code, "message": exc.detail},
                         status=exc.status_code)
    except Exception:
        return Response(str(exc.detail), status_code=exc.status_code, media_type="text/plain")


async def unsafe_path(request: Request, exc: Exception) -> Response:
    """A path of the class folder that is not the store's (a link planted in it, an id out of
    pattern): logged for the staff, and to the caller no more than a page that is not there."""
    log.warning("%s %s: refused a path of the class folder: %s", request.method, request.url.path, exc)
    return await http_error(request, HTTPException(404, "Not found."))


async def server_error(request: Request, exc: Exception) -> Response:
    """A fault of the server: logged here, one sentence there (never a traceback)."""
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return Response("The server failed on this request; the course staff can see why in its log.",
                    status_code=500, media_type="text/plain")


def templates() -> Jinja2Templates:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt"] = show_value
    env.filters["md"] = inline_markdown
    return Jinja2Templates(env=env)


def create_app(lab: BoundLab, options: RunOptions, settings: ServeSettings) -> Starlette:
    """The app for one class. Its lifespan opens the class (and starts the grading workers) and
    closes it; a test client or uvicorn runs it."""
    room = Classroom(lab, options, settings)
    room.lti_who = lti.lti_who

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        room.open()
        app.state.lti.start()
        app.state.sessions = Sessions(room.secret, max_age_s=int(settings.session_hours * 3600),
                                      secure=settings.secure_cookies,
                                      book=SessionBook(room.store.state / SESSIONS_FILE),
                                      names=cookie_names("serve", settings.port))
        app.state.login_limiter = LoginLimiter()
        try:
            yield
        finally:
            app.state.lti.stop()
            room.close()

    app = Starlette(routes=routes, lifespan=lifespan,
                    middleware=[Middleware(SecurityHeaders), Middleware(BodyLimit, limit_for=body_limit(settings))],
                    exception_handlers={HTTPException: http_error, UnsafePath: unsafe_path, 500: server_error})
    app.state.classroom = room
    app.state.templates = templates()
    app.state.review_desk = review.classroom_desk(room)
    app.state.review_auth = deps.instructor
    app.state.lti = lti.LtiTool(room)
    return app


def run_server(lab: BoundLab, options: RunOptions, settings: ServeSettings) -> None:
    """Serve with uvicorn until Ctrl-C or SIGTERM (then the workers stop; what they held is graded
    at the next start). Behind a reverse proxy, the proxy's address may set the client's scheme."""
    import uvicorn

    app = create_app(lab, options, settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info", server_header=False,
                proxy_headers=True, forwarded_allow_ips="127.0.0.1", timeout_graceful_shutdown=10)
