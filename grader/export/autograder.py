"""gradelab inside Gradescope: the autograder bundle (``gradelab gradescope LAB --out
autograder.zip``) and what its ``run_autograder`` runs (``gradelab autograde``).

The bundle holds ``setup.sh`` (run once when Gradescope builds its image: a venv with the pinned
torch, every install through ``constraints.txt``), ``run_autograder`` (run per submission) and
``gradelab/``: this gradelab's source with the one lab, so the image grades with exactly the
code and lab that made it. ``run_autograder`` grades ``/autograder/submission`` with every check
(hidden ones reported ``after_published``), names the student from
``/autograder/submission_metadata.json``, and writes ``/autograder/results/results.json``, with
the student's PDF report beside it and, as a download link, in the output. ``AUTOGRADER_ROOT``
and ``GRADELAB_PYTHON`` point it elsewhere (the tests run it in a temporary folder).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import zipfile
from pathlib import Path

from grader.errors import SubmissionError
from grader.export.gradescope import results_json, to_bytes
from grader.grading.engine import grade_submission
from grader.grading.executor import Job, unreadable
from grader.grading.run import Run
from grader.lab.loader import Lab
from grader.options import Mode, RunOptions
from grader.results import Student, SubmissionResult
from grader.reveal import Audience

log = logging.getLogger(__name__)
SOURCE = Path(__file__).resolve().parents[2]
_EPOCH = (2020, 1, 1, 0, 0, 0)
_PDF_LINK_MAX = 1 << 20

# Gradescope's image is Ubuntu 22.04, whose python3 is 3.10; gradelab needs 3.11. setup.sh installs a
# pinned 3.11 with uv (from PyPI, through the system pip), torch's CPU wheels from PyTorch's CPU index
# (the default index serves the CUDA build, gigabytes), and treats the fonts and Pango libraries
# the PDF report needs as optional: a missing package costs the report, never the setup.
UV_VERSION = "0.13.9"
PYTHON_VERSION = "3.11"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
SETUP_SH = f"""#!/usr/bin/env bash
# Run once by Gradescope while it builds the autograder's image (as root, Ubuntu 22.04).
set -euo pipefail
cd /autograder/source/gradelab
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends python3-pip ca-certificates
# Optional (the PDF report): a missing package is a warning, never a failed setup.
for pkg in libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core; do
    apt-get install -y --no-install-recommends "$pkg" || echo "gradelab setup: $pkg not installed (PDF reports may be missing)"
done
python3 -m pip install -q "uv=={UV_VERSION}"
python3 -m uv python install {PYTHON_VERSION}
python3 -m uv venv --python {PYTHON_VERSION} /autograder/venv
# constraints.txt pins torch and torchvision: nothing may pull another build; the CPU index serves the CPU wheels.
python3 -m uv pip install --python /autograder/venv/bin/python -q \\
    --index-url {TORCH_CPU_INDEX} --extra-index-url https://pypi.org/simple --index-strategy unsafe-best-match \\
    -c constraints.txt torch==2.14.1 torchvision==0.29.1
python3 -m uv pip install --python /autograder/venv/bin/python -q -c constraints.txt .
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Run by Gradescope for each submission: grades /autograder/submission with gradelab and writes
# /autograder/results/results.json. AUTOGRADER_ROOT and GRADELAB_PYTHON point it elsewhere.
set -euo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
PYTHON="${{GRADELAB_PYTHON:-$ROOT/venv/bin/python}}"
cd "$ROOT/source/gradelab"
export GRADELAB_LABS="$ROOT/source/gradelab/reference"
exec "$PYTHON" -m grader autograde --lab {lab} --root "$ROOT"
"""


def _source_files(lab: Lab) -> list[tuple[str, Path]]:
    """(name in the bundle, file here): gradelab's package, report templates and build files,
    and the one lab."""
    picked = [("pyproject.toml", SOURCE / "pyproject.toml"), ("constraints.txt", SOURCE / "constraints.txt"),
              ("README.md", SOURCE / "README.md")]
    for folder, base in ((SOURCE / "grader", "grader"), (SOURCE / "templates", "templates"),
                         (lab.folder, f"reference/{lab.id}")):
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and not path.name.endswith(".pyc"):
                picked.append((f"{base}/{path.relative_to(folder).as_posix()}", path))
    return picked


def _add(zf: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def bundle(lab: Lab) -> bytes:
    """The autograder zip for ``lab``: the same lab and gradelab always give the same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        _add(zf, "setup.sh", SETUP_SH.encode(), executable=True)
        _add(zf, "run_autograder", RUN_AUTOGRADER.format(lab=lab.id).encode(), executable=True)
        for name, path in _source_files(lab):
            _add(zf, f"gradelab/{name}", path.read_bytes())
    return buffer.getvalue()


def student_from_metadata(root: Path) -> Student:
    """The submitter, from Gradescope's ``submission_metadata.json`` (several for a group)."""
    try:
        meta = json.loads((root / "submission_metadata.json").read_text(encoding="utf-8"))
        users = [u for u in meta.get("users", []) if isinstance(u, dict)]
    except (OSError, ValueError, AttributeError):
        users = []
    if not users:
        return Student(id="submission", name="submission", source=str(root / "submission"))
    return Student(id=" ".join(str(u.get("id", "")) for u in users),
                   name=" & ".join(str(u.get("name", "")) for u in users),
                   email=str(users[0].get("email") or "") or None, source=str(root / "submission"))


def _pdf_link(result: SubmissionResult, results_dir: Path) -> str:
    """The student's PDF report beside results.json, and a Markdown link that downloads it."""
    try:
        from grader.report import ReportRenderer

        pdf = ReportRenderer().write(result, results_dir / "report.pdf", Audience.student, False)
    except Exception as exc:  # fonts, cairo …: grading stands without its report
        log.warning("the PDF report could not be rendered: %s", exc)
        return "(The PDF report could not be rendered on this machine.)"
    data = pdf.read_bytes()
    if len(data) > _PDF_LINK_MAX:
        return "(Your PDF report is too large to attach here: ask your instructor for it.)"
    encoded = base64.b64encode(data).decode("ascii")
    return f"[Your feedback report (PDF)](data:application/pdf;base64,{encoded})"


def autograde(lab: Lab, root: Path, options: RunOptions = RunOptions(mode=Mode.grade, reports=False)) -> Path:
    """Grade ``root/submission`` as Gradescope asks, write ``root/results/results.json``; returns it."""
    root = Path(root)
    results_dir = root / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    student = student_from_metadata(root)
    submission = root / "submission"
    with Run(lab, options, hide=(root / "source", results_dir)) as run:
        try:
            result = grade_submission(run, submission, name="submission", student=student)
        except SubmissionError as exc:
            result = unreadable(run, Job(path=submission, name="submission", student=student), exc)
    link = _pdf_link(result, results_dir)
    target = results_dir / "results.json"
    target.write_bytes(to_bytes(results_json(result, extra_output=link)))
    return target
