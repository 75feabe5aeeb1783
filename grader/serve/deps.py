"""What a route asks for, each an explicit call at the top of the route (Starlette's way: no
injection framework): the classroom, who is calling (a student, the instructor, or a redirect to
the login page), a form whose CSRF token was checked, and a page rendered with what every page
shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from grader.serve.classroom import Classroom, Who, when
from grader.serve.security import Session, Sessions, same_origin, same_token


class LoginRequired(HTTPException):
    """No valid session: pages send the browser to the login page, JSON answers 401."""

    def __init__(self) -> None:
        super().__init__(401, "Log in first.")


@dataclass(frozen=True)
class Caller:
    who: Who
    session: Session

    @property
    def student_id(self) -> str:
        assert self.who.student is not None
        return self.who.student.id


def classroom(request: Request) -> Classroom:
    room: Classroom = request.app.state.classroom
    return room


def sessions(request: Request) -> Sessions:
    held: Sessions = request.app.state.sessions
    return held


def caller(request: Request) -> Caller | None:
    """The session's owner, if the cookie verifies and its token was not reissued since."""
    session = sessions(request).read(request)
    if session is None:
        return None
    who = classroom(request).who(session.role, session.student, session.tv)
    return Caller(who, session) if who is not None else None


def student(request: Request) -> Caller:
    found = caller(request)
    if found is None:
        raise LoginRequired()
    if found.who.role != "student":
        raise HTTPException(403, "This page is a student's: you are logged in as the instructor.")
    return found


def instructor(request: Request) -> Caller:
    found = caller(request)
    if found is None:
        raise LoginRequired()
    if found.who.role != "instructor":
        raise HTTPException(403, "This page is the instructor's.")
    return found


def check_origin(request: Request) -> None:
    if not same_origin(request):
        raise HTTPException(403, "This form was sent from another site: refused.")


async def form(request: Request, who: Caller, *, max_files: int = 0) -> FormData:
    """The request's form (its body read under the route's cap), refused unless it carries the
    session's CSRF token."""
    check_origin(request)
    data = await request.form(max_files=max_files, max_fields=20, max_part_size=64 * 1024)
    if not same_token(who.session.csrf, data.get("csrf")):
        await data.close()
        raise HTTPException(403, "This form has expired (or was not sent from this site): reload the page and "
                                 "send it again.")
    return data


async def files_of(data: FormData, field: str) -> list[tuple[str, bytes]]:
    """The files sent under ``field``, as (name as sent, bytes)."""
    sent = []
    for item in data.getlist(field):
        if isinstance(item, UploadFile):
            sent.append((item.filename or "", await item.read()))
    return sent


def page(request: Request, name: str, context: dict[str, Any], status: int = 200,
         headers: dict[str, str] | None = None) -> Response:
    """A page of ``templates/serve/``, with what every page shows: the lab, who is logged in, and
    their CSRF token for the forms on it."""
    templates: Jinja2Templates = request.app.state.templates
    found = context.pop("caller", None) or caller(request)
    room = classroom(request)
    base = {"lab": room.lab.manifest, "caller": found, "csrf": found.session.csrf if found else "",
            "when": when, "settings": room.settings}
    return templates.TemplateResponse(request, f"serve/{name}", {**base, **context}, status_code=status,
                                      headers=headers)
