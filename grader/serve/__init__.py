"""The hand-in server (``gradelab serve``): students upload a hand-in and read their feedback;
the lab's reference, its answers and the other students' work never leave the machine.

    app.py          the Starlette app: every route listed in one place, the middleware, the lifespan
    student.py      the student's pages: log in, upload, an attempt, its PDF
    instructor.py   the instructor's pages: the roster, a student's attempts, class CSV, exports
    classroom.py    what the routes call: the class's rules (due date, rate), its store, queue and workers
    security.py     sessions (signed cookies), CSRF, security headers, the request-body cap
    roster.py       the roster and its tokens (stored hashed, compared in constant time)
    uploads.py      what an upload may hold, checked before anything is stored
    store.py        the class folder: attempts written atomically, the latest copy, every path checked
    queue.py        the grading queue on disk: a state file per attempt, an atomic claim
    workers.py      grading worker processes, each with its own ``Run``
    settings.py     ``ServeSettings``: the server's rules, one frozen value made at the edge

Nothing here is imported by the CLI until ``gradelab serve`` or ``gradelab roster`` runs.
"""
