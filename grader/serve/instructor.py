"""The instructor's pages: the roster (each student's latest score, attempts and last upload), a
student's attempts, an attempt's whole result (hidden checks included) with both reports and the
files as uploaded, the class CSV, and the exports of ``gradelab export``.

To add an instructor page: a function here (or in a module of its own) that starts with
``deps.instructor(request)``, a line in ``app.routes``, and a template under
``templates/serve/instructor/`` that extends ``serve/base.html.j2``; the roster's row and the
student page have blocks meant to be extended (``row_extra``, ``attempt_extra``).
"""

from __future__ import annotations

import io
import zipfile

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from grader.errors import GradelabError
from grader.export.targets import ExportTarget, export_results
from grader.grading.batch import class_csv
from grader.report.render import submission_context
from grader.reveal import Audience
from grader.serve import deps
from grader.serve.classroom import AttemptStatus
from grader.serve.roster import RosterEntry, valid_id
from grader.serve.store import INSTRUCTOR_PDF, STUDENT_PDF

REPORTS = {"report.pdf": (INSTRUCTOR_PDF, "report"), "feedback.pdf": (STUDENT_PDF, "feedback")}


def _student(request: Request) -> RosterEntry:
    """The student named in the path: a roster id, or 404 (never a path of the class folder)."""
    sid = request.path_params["sid"]
    student = deps.classroom(request).roster.get(sid) if valid_id(sid) else None
    if student is None:
        raise HTTPException(404, "No such student on the roster.")
    return student


def _attempt(request: Request, student: RosterEntry) -> AttemptStatus:
    number = request.path_params["number"]
    status = deps.classroom(request).status(student.id, number)
    if status is None:
        raise HTTPException(404, f"{student.name} has no attempt {number}.")
    return status


async def roster(request: Request) -> Response:
    caller = deps.instructor(request)
    room = deps.classroom(request)
    rows = room.roster_rows()
    graded = [r.latest for r in rows if r.latest is not None]
    counts = room.queue.counts() if room.queue else {}
    return deps.page(request, "instructor/roster.html.j2", {
        "caller": caller, "rows": rows, "graded": len(graded), "queued": counts.get("pending", 0),
        "grading": counts.get("claimed", 0), "targets": [t.value for t in ExportTarget],
        "mean": sum(r.percent for r in graded) / len(graded) if graded else None})


async def student(request: Request) -> Response:
    caller = deps.instructor(request)
    who = _student(request)
    room = deps.classroom(request)
    attempts = list(reversed(room.attempts(who.id)))
    results = {s.meta.number: room.store.result(who.id, s.meta.number) for s in attempts}
    return deps.page(request, "instructor/student.html.j2", {
        "caller": caller, "student": who, "attempts": attempts, "results": results, "due": room.due_for(who)})


async def attempt(request: Request) -> Response:
    caller = deps.instructor(request)
    who = _student(request)
    status = _attempt(request, who)
    room = deps.classroom(request)
    result = room.with_grades(who.id, room.store.result(who.id, status.meta.number))
    context = submission_context(result, Audience.instructor, figures=False) if result is not None else {}
    return deps.page(request, "instructor/attempt.html.j2", {
        "caller": caller, "student": who, "status": status, "result": result, "report": context,
        "reports": {name: room.store.read(who.id, status.meta.number, stored) is not None
                    for name, (stored, _) in REPORTS.items()}})


async def report(request: Request) -> Response:
    deps.instructor(request)
    who = _student(request)
    status = _attempt(request, who)
    which = REPORTS.get(request.path_params["name"])
    if which is None:
        raise HTTPException(404, "No such report.")
    room = deps.classroom(request)
    data = room.store.read(who.id, status.meta.number, which[0])
    if data is None:
        raise HTTPException(404, "This report is not ready.")
    from grader.serve.review import stored_or_graded_pdf

    audience = Audience.instructor if which[0] == INSTRUCTOR_PDF else Audience.student
    data = await stored_or_graded_pdf(request, room, who.id, status.meta.number, data, audience)
    filename = f"{who.id}-attempt-{status.meta.number}-{which[1]}.pdf"
    return Response(data, media_type="application/pdf",
                    headers={"content-disposition": f'attachment; filename="{filename}"'})


async def upload(request: Request) -> Response:
    """The files of an attempt as uploaded, in a zip (an archive upload is in it as it came)."""
    deps.instructor(request)
    who = _student(request)
    status = _attempt(request, who)
    files = deps.classroom(request).store.upload_files(who.id, status.meta.number)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return Response(buffer.getvalue(), media_type="application/zip", headers={
        "content-disposition": f'attachment; filename="{who.id}-attempt-{status.meta.number}.zip"'})


async def class_table(request: Request) -> Response:
    """``class.csv`` as ``gradelab grade`` writes it, from each student's newest graded attempt."""
    deps.instructor(request)
    room = deps.classroom(request)
    data = class_csv(room.lab, room.latest_results())
    return Response(data, media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": f'attachment; filename="{room.lab.id}-class.csv"'})


async def export(request: Request) -> Response:
    """``gradelab export`` from the server's latest results: one file, or a zip of several."""
    caller = deps.instructor(request)
    data = await deps.form(request, caller, max_files=1)
    try:
        template_file = data.get("template")
        template = await template_file.read() if isinstance(template_file, UploadFile) else b""
        to = str(data.get("to", ""))
        assignment = str(data.get("assignment") or "") or None
    finally:
        await data.close()
    room = deps.classroom(request)
    results = room.latest_results()
    if not results:
        raise HTTPException(409, "Nothing is graded yet: there is nothing to export.")
    try:
        files, _warnings = export_results(results, to, template=template or None, assignment=assignment)
    except GradelabError as exc:
        raise HTTPException(400, str(exc)) from None
    if len(files) == 1:
        (name, payload), = files.items()
        media = "text/csv; charset=utf-8" if name.endswith(".csv") else "application/octet-stream"
        return Response(payload, media_type=media, headers={"content-disposition": f'attachment; filename="{name}"'})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, payload in files.items():
            zf.writestr(name, payload)
    return Response(buffer.getvalue(), media_type="application/zip",
                    headers={"content-disposition": f'attachment; filename="{room.lab.id}-{to}.zip"'})


async def similarity(request: Request) -> Response:
    """Pairs of students' latest graded attempts to look at together (``grader.similarity``),
    computed when asked: for the instructor only, never linked from a student's page."""
    caller = deps.instructor(request)
    room = deps.classroom(request)
    from starlette.concurrency import run_in_threadpool

    from grader.serve.store import UPLOAD
    from grader.similarity.lab import compare_hand_ins
    from grader.similarity.view import context

    hand_ins = []
    for sid in room.store.students():
        latest = room.store.latest_result(sid)
        if latest is not None:
            meta, result = latest
            hand_ins.append((room.store.attempt_path(sid, meta.number) / UPLOAD, sid, result.student.name))
    report = await run_in_threadpool(compare_hand_ins, room.lab, hand_ins)
    return deps.page(request, "instructor/similarity.html.j2", {"caller": caller, **context(report)})
