"""The Gradescope bundle's setup.sh, read as Gradescope's image (Ubuntu 22.04, python3 3.10, root,
``set -e``) would run it. Static checks: no Ubuntu 22.04 root filesystem could be run here."""

from __future__ import annotations

import io
import zipfile

from grader import api


def setup_sh() -> str:
    with zipfile.ZipFile(io.BytesIO(api.gradescope_bundle("cifar-convnet"))) as zf:
        return zf.read("setup.sh").decode()


def test_setup_installs_a_pinned_python_311_rather_than_relying_on_the_images_310():
    text = setup_sh()
    assert 'pip install -q "uv==0.13.9"' in text and "uv python install 3.11" in text
    assert "uv venv --python 3.11 /autograder/venv" in text
    assert "python3 -m venv" not in text  # the image's 3.10 is below gradelab's requires-python


def test_setup_updates_apt_first_and_takes_torch_from_the_cpu_index():
    text = setup_sh()
    assert text.index("apt-get update") < text.index("apt-get install")
    assert "--index-url https://download.pytorch.org/whl/cpu" in text
    assert text.index("download.pytorch.org/whl/cpu") < text.index("torch==2.14.1")


def test_no_optional_library_can_fail_the_setup():
    lines = setup_sh().splitlines()
    for optional in ("libpango-1.0-0", "libharfbuzz-subset0", "fonts-dejavu-core"):
        required = [line for line in lines if optional in line and "apt-get install" in line]
        assert not required, required  # installed one by one in a loop that tolerates a failure
    assert any('apt-get install -y --no-install-recommends "$pkg" || echo' in line for line in lines)
