"""Build the two LMS downloads in this folder from the bundled cifar-convnet hand-ins:
``moodle-cifar-convnet/`` (Moodle's "Download all submissions", unzipped) and
``canvas-cifar-convnet/`` (Canvas's "Download Submissions", unzipped).

    python submissions/lms/build.py          # rewrite both (deterministic: same bytes every time)
    python submissions/lms/build.py --check  # exit 1 if the committed files differ from a rebuild

Each student's hand-in is one of ``submissions/cifar-convnet/*`` handed in the way students do:
nested one folder deeper, zipped (with macOS litter), as a notebook with a training loop at top
level, resubmitted (Canvas's ``-1``), late, as a tar.gz two folders deep, or with nothing to
grade. ``STUDENTS`` says who handed in what; the tests grade both downloads and compare each
student's score with the same hand-in graded as a plain folder.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SOURCE = ROOT / "submissions" / "cifar-convnet"
MOODLE = HERE / "moodle-cifar-convnet"
CANVAS = HERE / "canvas-cifar-convnet"
_EPOCH = (2024, 3, 1, 9, 0, 0)

# (LMS id, name as the LMS shows it, the bundled hand-in, how it was handed in)
STUDENTS = {
    "moodle": [
        ("333333", "Kim Park", "correct", "nested"),
        ("654321", "Émile Noël", "missing-floor", "zip"),
        ("111111", "Ana María López", "correct", "notebook"),
        ("222222", "Chen Wei", "wrong-padding", "folder"),
        ("555555", "Lee Jordan", None, "online text only"),
        ("777777", "Zoë Adams", "in-channels-confusion", "flat"),
    ],
    "canvas": [
        ("333333", "parkkim", "correct", "files"),
        ("654321", "noëlémile", "biases-forgotten", "zip, late"),
        ("111111", "lópezanamaría", "correct", "notebook"),
        ("222222", "chenwei", "wrong-receptive-field", "resubmitted"),
        ("555555", "leejordan", None, "a text file only"),
        ("777777", "adamszoe", "missing-plus-one", "tar.gz"),
    ],
}


def files_of(hand_in: str) -> dict[str, bytes]:
    folder = SOURCE / hand_in
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name in ("convnet.py", "answers.yaml")}


def zipped(files: dict[str, bytes], *, litter: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=_EPOCH), data)
            if litter:  # what macOS's "Compress" adds
                zf.writestr(zipfile.ZipInfo(f"__MACOSX/{name.rsplit('/', 1)[0]}/._{name.rsplit('/', 1)[-1]}",
                                            date_time=_EPOCH), b"\x00\x05\x16\x07")
        if litter:
            zf.writestr(zipfile.ZipInfo("lab2/.DS_Store", date_time=_EPOCH), b"\x00\x00\x00\x01Bud1")
    return buffer.getvalue()


def tarred(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 1709283600, 0o644
            tf.addfile(info, io.BytesIO(data))
    import gzip

    return gzip.compress(raw.getvalue(), mtime=0)


def notebook(hand_in: str) -> bytes:
    """The hand-in as a student's notebook: its module in cells, its answers in the cell tagged
    'answers', and what students leave at top level (magics, a pip install, a training loop that
    would run for hours, a print)."""
    sys.path.insert(0, str(ROOT))
    from grader.intake.notebooks import template_notebook

    files = files_of(hand_in)
    nb = json.loads(template_notebook("CIFAR-10 ConvNet", "convnet.py", files["convnet.py"].decode(),
                                      files["answers.yaml"].decode(), "cifar-convnet"))
    def cell(source: str) -> dict:
        return {"cell_type": "code", "execution_count": None, "id": "", "metadata": {}, "outputs": [], "source": source}

    cells = nb["cells"]
    cells.insert(1, cell("%matplotlib inline\n!pip install torchvision"))
    cells.append(cell("import time\nmodel = ConvNet()\nfor epoch in range(100):\n"
                      "    time.sleep(60)  # an hour and a half of training\nprint('done')"))
    for i, c in enumerate(cells, start=1):
        c["id"] = f"cell-{i}"
    return (json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")


def moodle() -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for pid, name, hand_in, how in STUDENTS["moodle"]:
        folder = f"{name}_{pid}_assignsubmission_file"
        if how == "nested":
            out.update({f"{folder}/lab2/{n}": d for n, d in files_of(hand_in).items()})
        elif how == "zip":
            out[f"{folder}/lab2.zip"] = zipped({f"lab2/{n}": d for n, d in files_of(hand_in).items()}, litter=True)
        elif how == "notebook":
            out[f"{folder}/lab2.ipynb"] = notebook(hand_in)
        elif how == "folder":
            out.update({f"{folder}/{n}": d for n, d in files_of(hand_in).items()})
            out[f"{folder}/.DS_Store"] = b"\x00\x00\x00\x01Bud1"
        elif how == "flat":
            out.update({f"{name}_{pid}_assignsubmission_file_{n}": d for n, d in files_of(hand_in).items()})
        else:
            out[f"{name}_{pid}_assignsubmission_onlinetext/onlinetext.html"] = \
                b"<html><body><p>I could not finish the lab, sorry.</p></body></html>"
    return out


def canvas() -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    attachment = 9000
    for uid, name, hand_in, how in STUDENTS["canvas"]:
        late = "_LATE" if "late" in how else ""

        def put(file: str, data: bytes) -> None:
            nonlocal attachment
            attachment += 1
            out[f"{name}{late}_{uid}_{attachment}_{file}"] = data

        if how == "files":
            for n, d in files_of(hand_in).items():
                put(n, d)
        elif how.startswith("zip"):
            put("lab2.zip", zipped({f"lab2/{n}": d for n, d in files_of(hand_in).items()}))
        elif how == "notebook":
            put("lab2.ipynb", notebook(hand_in))
        elif how == "resubmitted":
            for n, d in files_of(hand_in).items():
                put(n.replace(".", "-1.", 1), d)
        elif how == "tar.gz":
            put("handin.tar.gz", tarred({f"Lab2/handin/{n}": d for n, d in files_of(hand_in).items()}))
        else:
            put("notes.txt", b"Sorry, nothing this week.\n")
    return out


def main(check: bool = False) -> int:
    differ = []
    for folder, files in ((MOODLE, moodle()), (CANVAS, canvas())):
        if check:
            here = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
            if here != files:
                differ.append(folder.name)
            continue
        shutil.rmtree(folder, ignore_errors=True)
        for name, data in files.items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    if differ:
        print(f"out of date: {', '.join(differ)} (rerun python submissions/lms/build.py)")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(check="--check" in sys.argv))
