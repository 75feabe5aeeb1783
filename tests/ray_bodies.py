"""Stand-ins for the server's Ray task body (``grader.serve.cluster.serve_on_node``), imported by
the Ray workers of tests/test_serve_ray.py's cluster: same arguments, the real body inside."""

from __future__ import annotations

import os
import time
from pathlib import Path

from grader.serve.cluster import serve_on_node

MARKERS = "GRADELAB_TEST_RAY_MARKERS"  # a folder, given to the cluster's workers by the test's runtime_env
LATE_S = 6.0
LATE_NOTE = "a late answer from a task the server had given up on"


def late_first(lab_files, options_json, job, files, single_file, notes, graded_json, hide=()):
    """The first task of each attempt hangs past the claim's deadline, then answers anyway (a node
    the server could not reach to cancel it); the next ones are the real body. Each call notes
    what it was asked to hide from the children (a file ``hide`` beside its marker)."""
    marker = Path(os.environ[MARKERS]) / f"{job.name}-{job.path.parts[-2]}"
    try:
        marker.mkdir()
    except FileExistsError:
        (marker / "hide").write_text("\n".join(hide))
        return serve_on_node(lab_files, options_json, job, files, single_file, notes, graded_json, hide)
    time.sleep(LATE_S)
    result_json, reports = serve_on_node(lab_files, options_json, job, files, single_file, notes + [LATE_NOTE],
                                         graded_json, hide)
    (marker / "answered").write_text("1")
    return result_json, reports


def carol_waits(lab_files, options_json, job, files, single_file, notes, graded_json, hide=()):
    """Carol's first task takes a minute (the server is stopped meanwhile); everything else is the
    real body."""
    marker = Path(os.environ[MARKERS]) / f"held-{job.name}-{job.path.parts[-2]}"
    if job.name == "carol" and graded_json is None:
        try:
            marker.mkdir()
        except FileExistsError:
            pass
        else:
            time.sleep(60.0)
    return serve_on_node(lab_files, options_json, job, files, single_file, notes, graded_json, hide)
