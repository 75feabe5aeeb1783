"""The README is the front door and the pages under docs/ hold the rest: every page is linked
from the README, every relative link resolves, and every gradelab command a page shows either
runs here, as shown, on the bundled hand-ins, or is named below with the reason it cannot."""

from __future__ import annotations

import re
import shlex

import pytest

from tests.conftest import ROOT, cli

README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")

# Each command as a page shows it, in the order they run (later ones read what earlier ones
# wrote): the exit statuses accepted, words the output holds, and files it must leave (relative to
# the scratch folder the commands run in).
RUN: list[tuple[str, set[int], str, list[str]]] = [
    (".venv/bin/gradelab labs", {0}, "cifar-convnet", []),
    (".venv/bin/gradelab init cifar-convnet my-lab2", {0}, "my-lab2", ["my-lab2/convnet.py", "my-lab2/answers.yaml"]),
    (".venv/bin/gradelab check my-lab2 --lab cifar-convnet", {1}, "model-output-shape", []),  # the template: to do
    (".venv/bin/gradelab check submissions/cifar-convnet/correct --lab cifar-convnet --pdf report.pdf", {0},
     "model-output-shape", ["report.pdf"]),
    (".venv/bin/gradelab grade submissions/cifar-convnet --lab cifar-convnet --out results/cifar", {0, 3},
     "Graded", ["results/cifar/class.csv", "results/cifar/reports/class-summary.pdf",
                "results/cifar/reports/students/correct.pdf", "results/cifar/reports/instructor/correct.pdf"]),
    (".venv/bin/gradelab export results/cifar --to csv --partial", {0}, "grades.csv",
     ["results/cifar/export/grades.csv"]),
    (".venv/bin/gradelab pack cifar-convnet --students handout/cifar-convnet", {0}, "handout",
     ["handout/cifar-convnet/lab.yaml"]),
    (".venv/bin/gradelab grade submissions/lms/moodle-cifar-convnet --lab cifar-convnet --out results/moodle --no-pdf",
     {3}, "moodle layout", ["results/moodle/class.csv"]),
    (".venv/bin/gradelab export results/moodle --to moodle --partial", {0}, "partial export",
     ["results/moodle/export/moodle-grading-worksheet.csv"]),
    (".venv/bin/gradelab roster tokens roster.csv --class classes/lab2 > tokens.csv", {0}, "token", []),
    ("gradelab lti tool --url https://grader.example.edu", {0}, "https://grader.example.edu/lti/launch", []),
    ("gradelab lti tool --url https://grader.example.edu --canvas", {0}, '"oidc_initiation_url"', []),
]

NOT_RUN = {
    "gradelab lti register --class ./class --issuer https://moodle.example.edu --client-id <Client ID> "
    "--deployment-id <Deployment ID> --auth-url https://moodle.example.edu/mod/lti/auth.php "
    "--jwks-url https://moodle.example.edu/mod/lti/certs.php --token-url https://moodle.example.edu/mod/lti/token.php":
        "placeholders for the values Moodle gives on registration; registering is tested in test_lti.py",
    "gradelab lti register --class ./class --issuer https://canvas.instructure.com --client-id <Client ID> "
    "--deployment-id <Deployment ID> --auth-url https://sso.canvaslms.com/api/lti/authorize_redirect "
    "--jwks-url https://sso.canvaslms.com/api/lti/security/jwks "
    "--token-url https://<your-school>.instructure.com/login/oauth2/token":
        "placeholders for the values Canvas gives on registration; registering is tested in test_lti.py",
    "gradelab grade class/ --lab cifar-convnet --out results/ --similarity":
        "a placeholder class; test_similarity.py grades its corpus with --similarity",
    "gradelab similarity results/": "a placeholder results folder; test_similarity.py runs it on its corpus",
    "gradelab similarity results/ --against ../2025/class/ --boilerplate handout/extra-code/":
        "placeholder folders of another year; test_similarity.py runs --against and --boilerplate",
    ".venv/bin/gradelab check path/to/my-handin --lab cifar-convnet":
        "a placeholder path; the same command runs above on my-lab2 and on the correct hand-in",
    ".venv/bin/gradelab review results/cifar":
        "serves the grading pages until Ctrl-C; its app is tested through the ASGI client (test_review_pages.py) "
        "and in Chromium (test_review_browser.py)",
    ".venv/bin/gradelab serve --lab cifar-convnet --class classes/lab2 --roster roster.csv "
    "--due 2026-03-10T23:59+01:00 --public-url https://grading.example.edu":
        "a server that runs until stopped; tested through the ASGI client (test_serve.py) and in Chromium "
        "(test_serve_browser.py)",
    ".venv/bin/gradelab serve --lab cifar-training --class classes/lab3 --roster roster.csv --ray ray://head:10001":
        "a server that runs until stopped, on a cluster this machine does not have; the same server on a local "
        "Ray cluster is tested in test_serve_ray.py",
    ".venv/bin/gradelab calibrate cifar-training --budget cpu --against $S/layers-in-a-list "
    "--against $S/no-nonlinearity --against $S/dropout-always-on --against $S/nan-loss":
        "trains on the cpu budget for many minutes; calibrate --against runs on the smoke budget in "
        "test_cifar_training.py",
    '.venv/bin/gradelab grade "Lab 2-Download all submissions.zip" --lab cifar-convnet --out results/lab2':
        "the instructor's own Moodle download; the same path runs above on submissions/lms/moodle-cifar-convnet",
    '.venv/bin/gradelab export results/lab2 --to moodle --template "Grades-Lab 2.csv"':
        "needs the instructor's worksheet from Moodle; --template is tested field by field in test_export.py",
    ".venv/bin/gradelab grade classes/lab2 --lab cifar-convnet --out results/lab2":
        "a served class's folder, filled by uploads; grading one is tested in test_serve.py",
}


def shown_commands() -> list[str]:
    """Every gradelab command in a shell block of the README and the docs pages (continued lines
    joined, comments dropped), in order, once each."""
    found: list[str] = []
    for page in [README, *PAGES]:
        in_code, lang, held = False, "", ""
        for line in page.read_text(encoding="utf-8").splitlines():
            text = line.strip()
            if text.startswith("```"):
                in_code, lang = (not in_code), text[3:].strip()
                continue
            if not in_code or lang not in ("bash", "sh", "console", ""):
                continue
            text = f"{held} {text}".strip() if held else text
            held = ""
            if text.endswith("\\"):
                held = text[:-1].strip()
                continue
            match = re.search(r"(?:\.venv/bin/)?gradelab\s.*", text)
            if match and not text.startswith("#"):
                command = re.sub(r"\s+#.*$", "", match.group(0)).strip()
                command = " ".join(command.split())
                if command not in found:
                    found.append(command)
    return found


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(README.parent / target.split("#")[0]).resolve() for target in LINK.findall(README.read_text())}
    assert [p.name for p in PAGES if p.resolve() not in linked] == []


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    broken = [target for target in LINK.findall(page.read_text(encoding="utf-8"))
              if not re.match(r"[a-z]+:", target) and not target.startswith("#")
              and not (page.parent / target.split("#")[0]).exists()]
    assert broken == []


def test_every_command_the_docs_show_is_run_here_or_named_with_its_reason():
    named = [c for c, *_ in RUN] + list(NOT_RUN)
    assert sorted(shown_commands()) == sorted(named)


def test_the_commands_the_docs_show_run_as_shown_on_the_bundled_hand_ins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "roster.csv").write_text("id,name,email\ns1,Ada Lovelace,ada@example.edu\ns2,Alan Turing,\n")
    for command, codes, words, files in RUN:
        args = shlex.split(command.split(" > ")[0])[1:]
        args = [str(ROOT / a) if a.startswith("submissions/") else a for a in args]
        result = cli(*args)
        assert result.exit_code in codes, f"{command}\n{result.output}"
        assert words in result.output, f"{command}\n{result.output}"
        for name in files:
            assert (tmp_path / name).is_file(), f"{command} did not write {name}"
