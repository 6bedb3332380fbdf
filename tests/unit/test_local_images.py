"""Root images for the runsc backend: named like the Docker images (same inputs), refused when
missing, half built or altered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crucible_ray.errors import ImageMissing
from crucible_ray.images import build, rootfs
from crucible_ray.images.local import (
    MANIFEST,
    file_sha256,
    image_path,
    tree_sha256,
    verify_image,
)
from crucible_ray.languages import LANGUAGES

SPEC = LANGUAGES["python"]


def test_docker_and_runsc_images_share_the_content_addressed_name():
    assert build.image_tag is rootfs.image_tag and build.image_inputs is rootfs.image_inputs
    digest = rootfs.image_digest(SPEC)
    assert build.image_tag(SPEC) == f"crucible-sandbox-python:{digest}"
    assert image_path(SPEC, Path("/s")) == Path(f"/s/images/python-{digest}")


def _fake_image(state: Path) -> Path:
    path = image_path(SPEC, state)
    tree = path / "rootfs"
    (tree / "usr/bin").mkdir(parents=True)
    (tree / "usr/bin/python3").write_bytes(b"\x7fELF")
    (tree / "bin").symlink_to("usr/bin")
    (path / "rootfs.erofs").write_bytes(b"erofs image")
    manifest = {
        "inputs": rootfs.image_inputs(SPEC),
        "directory": tree_sha256(tree),
        "erofs": file_sha256(path / "rootfs.erofs"),
    }
    (path / MANIFEST).write_text(json.dumps(manifest))
    return path


@pytest.mark.parametrize("fmt", ["erofs", "directory"])
def test_an_intact_image_is_accepted(tmp_path, fmt):
    path = _fake_image(tmp_path)
    image = verify_image(SPEC, fmt, tmp_path)
    assert (image.path, image.format) == (path, fmt)


def test_a_missing_image_names_the_build_command(tmp_path):
    with pytest.raises(ImageMissing, match="crucible-ray images build --backend runsc"):
        verify_image(SPEC, "erofs", tmp_path)


@pytest.mark.parametrize(
    ("fmt", "alter"),
    [
        ("directory", lambda p: (p / "rootfs/usr/bin/python3").write_bytes(b"evil")),
        ("directory", lambda p: (p / "rootfs/usr/bin/extra").write_bytes(b"")),
        ("directory", lambda p: (p / "rootfs/usr/bin/python3").chmod(0o4755)),
        ("directory", lambda p: (p / "rootfs/bin").unlink() or (p / "rootfs/bin").symlink_to("/")),
        ("erofs", lambda p: (p / "rootfs.erofs").write_bytes(b"erofs imagf")),
        ("erofs", lambda p: (p / "rootfs.erofs").unlink()),
    ],
)
def test_an_altered_image_is_refused(tmp_path, fmt, alter):
    alter(_fake_image(tmp_path))
    with pytest.raises(ImageMissing, match="missing or altered"):
        verify_image(SPEC, fmt, tmp_path)


def test_an_image_of_other_inputs_is_refused(tmp_path):
    path = _fake_image(tmp_path)
    manifest = json.loads((path / MANIFEST).read_text())
    manifest["inputs"]["launcher_sha256"] = "0" * 64
    (path / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ImageMissing, match="missing or altered"):
        verify_image(SPEC, "erofs", tmp_path)


def test_an_image_without_an_erofs_file_serves_only_the_directory_root(tmp_path):
    path = _fake_image(tmp_path)
    manifest = json.loads((path / MANIFEST).read_text())
    del manifest["erofs"]
    (path / MANIFEST).write_text(json.dumps(manifest))
    assert verify_image(SPEC, "directory", tmp_path).format == "directory"
    with pytest.raises(ImageMissing):
        verify_image(SPEC, "erofs", tmp_path)
