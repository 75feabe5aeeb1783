"""The student's pages: log in, the home page (hand in, past attempts), an attempt (its place in
the queue, then its feedback), the attempt's status as JSON (what the waiting page polls) and its
PDF report. A student's routes carry no student id: whose attempt it is comes from the session,
so no URL reaches another student's work.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from grader.report.render import submission_context
from grader.reveal import Audience
from grader.serve import deps
from grader.serve.classroom import AttemptStatus, Refused
from grader.serve.settings import now
from grader.serve.store import STUDENT_PDF
from grader.serve.uploads import MAX_FILES


async def root(request: Request) -> Response:
    found = deps.caller(request)
    if found is None:
        return RedirectResponse("/login", 303)
    if found.who.role == "instructor":
        return RedirectResponse("/instructor", 303)
    return home_page(request, found)


def home_page(request: Request, caller: deps.Caller, *, error: str = "", status: int = 200,
              headers: dict[str, str] | None = None) -> Response:
    room = deps.classroom(request)
    student = caller.who.student
    assert student is not None
    at = now()
    due = room.due_for(student)
    return deps.page(request, "home.html.j2", {
        "caller": caller, "student": student, "due": due, "extended": due != room.settings.due,
        "closed": due is not None and at > due, "attempts": list(reversed(room.attempts(student.id))),
        "used": len(room.recent(student, at)), "again": room.next_upload_at(student, at),
        "interface": room.lab.manifest.interface, "error": error,
    }, status=status, headers=headers)


async def login_form(request: Request) -> Response:
    if deps.caller(request) is not None:
        return RedirectResponse("/", 303)
    return login_page(request)


def login_page(request: Request, *, error: str = "", status: int = 200) -> Response:
    sessions = deps.sessions(request)
    token = sessions.login_token(request)
    response = deps.page(request, "login.html.j2", {"error": error, "login_csrf": token}, status=status)
    sessions.keep_login_token(response, token)
    return response


async def login(request: Request) -> Response:
    deps.check_origin(request)
    data = await request.form(max_files=0, max_fields=5, max_part_size=4096)
    sessions = deps.sessions(request)
    if not (expected := sessions.login_token_of(request)) or not deps.same_token(expected, data.get("csrf")):
        return login_page(request, error="This login form has expired: please log in again.", status=403)
    token = data.get("token")
    found = deps.classroom(request).login(token if isinstance(token, str) else "")
    if found is None:
        return login_page(request, error="This is not a token of this class. Paste the token from the email you "
                                         "received (or ask your instructor for a new one).", status=401)
    who, stamp = found
    response = RedirectResponse("/instructor" if who.role == "instructor" else "/", 303)
    sessions.start(response, who.role, who.student.id if who.student else "", stamp)
    return response


async def logout(request: Request) -> Response:
    found = deps.caller(request)
    if found is not None:
        await deps.form(request, found)
    response = RedirectResponse("/login", 303)
    deps.sessions(request).end(response)
    return response


async def upload(request: Request) -> Response:
    caller = deps.student(request)  # before a byte of the body is read
    data = await deps.form(request, caller, max_files=MAX_FILES + 1)
    try:
        sent = await deps.files_of(data, "files")
    finally:
        await data.close()
    assert caller.who.student is not None
    try:
        meta = await deps.classroom(request).submit(caller.who.student, sent)
    except Refused as refused:
        headers = {"Retry-After": str(refused.retry_after)} if refused.retry_after else None
        return home_page(request, caller, error=refused.message, status=refused.status, headers=headers)
    return RedirectResponse(f"/attempts/{meta.number}", 303)


def _status_or_404(request: Request, caller: deps.Caller, number: int) -> AttemptStatus:
    status = deps.classroom(request).status(caller.student_id, number)
    if status is None:
        raise HTTPException(404, f"You have no attempt {number}.")
    return status


async def attempt(request: Request) -> Response:
    caller = deps.student(request)
    number = request.path_params["number"]
    status = _status_or_404(request, caller, number)
    room = deps.classroom(request)
    view = room.student_view(caller.student_id, number) if status.state == "done" else None
    # The context from the whole result, which it shows through the reveal policy itself: so it can
    # say how many hidden checks the instructor grades (the student's view has none to count).
    whole = room.store.result(caller.student_id, number) if view is not None else None
    context = submission_context(whole, Audience.student, figures=False) if whole is not None else {}
    has_pdf = view is not None and room.store.read(caller.student_id, number, STUDENT_PDF) is not None
    return deps.page(request, "attempt.html.j2", {
        "caller": caller, "status": status, "view": view, "report": context, "has_pdf": has_pdf,
        "status_url": f"/attempts/{number}/status", "hidden_count": context.get("hidden_count", 0)})


async def attempt_status(request: Request) -> Response:
    caller = deps.caller(request)
    if caller is None or caller.who.role != "student":
        return JSONResponse({"error": "log in first"}, status_code=401)
    number = request.path_params["number"]
    status = deps.classroom(request).status(caller.student_id, number)
    if status is None:
        return JSONResponse({"error": "no such attempt"}, status_code=404)
    return JSONResponse({"attempt": number, "state": status.state, "position": status.position})


async def feedback_pdf(request: Request) -> Response:
    caller = deps.student(request)
    number = request.path_params["number"]
    _status_or_404(request, caller, number)
    room = deps.classroom(request)
    data = room.store.read(caller.student_id, number, STUDENT_PDF)
    if data is None:
        raise HTTPException(404, "The report of this attempt is not ready.")
    from grader.serve.review import stored_or_graded_pdf

    data = await stored_or_graded_pdf(request, room, caller.student_id, number, data, Audience.student)
    lab = room.lab.id
    return Response(data, media_type="application/pdf",
                    headers={"content-disposition": f'attachment; filename="{lab}-attempt-{number}-feedback.pdf"'})
