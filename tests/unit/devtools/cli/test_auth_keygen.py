"""``dpctl auth keygen``: the private key is never readable by others; nothing is written over a file or via a link.

Run in-process, as a user would from a shell (tests/cli_support.py).
"""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import docs_support
from tests.cli_support import dpctl


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """umask 0: a file made without an explicit mode would be world-readable (and writable)."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def keygen(prefix: Path) -> Any:
    return dpctl("auth", "keygen", "--out", str(prefix), "--kid", "key-2026")


def test_the_private_key_is_owner_only_from_its_first_byte(
    tmp_path: Path, permissive_umask: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every mode the file ever had is owner-only: a chmod after writing would leave a world-readable window."""
    seen: list[int] = []
    real_chmod = os.chmod

    def chmod(path: Any, mode: int, *args: Any, **kwargs: Any) -> None:
        if Path(path).exists():
            seen.append(stat.S_IMODE(os.stat(path).st_mode))  # the mode it had until now
        real_chmod(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "chmod", chmod)
    made = keygen(tmp_path / "mp")
    assert made.code == 0, made.err
    seen.append(stat.S_IMODE((tmp_path / "mp.pem").stat().st_mode))
    assert all(mode & 0o077 == 0 for mode in seen), [oct(m) for m in seen]
    assert stat.S_IMODE((tmp_path / "mp.pem").stat().st_mode) == 0o600


def test_a_dangling_link_at_the_private_path_is_refused_and_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "stolen.pem"
    target.parent.mkdir()
    (tmp_path / "mp.pem").symlink_to(target)
    ran = keygen(tmp_path / "mp")
    assert ran.code == 1
    assert f"{tmp_path / 'mp.pem'} is a symbolic link (to {target}, which does not exist)" in ran.err
    assert "nothing was written" in ran.err
    assert not target.exists()  # the link was not followed
    assert not (tmp_path / "mp.jwk.json").exists()


def test_a_link_to_an_existing_file_is_refused_as_a_link(tmp_path: Path) -> None:
    target = tmp_path / "other.txt"
    target.write_text("keep me")
    (tmp_path / "mp.pem").symlink_to(target)
    ran = keygen(tmp_path / "mp")
    assert ran.code == 1
    assert "is a symbolic link" in ran.err
    assert target.read_text() == "keep me"
    assert not (tmp_path / "mp.jwk.json").exists()


def test_an_existing_public_file_is_refused_and_no_private_key_is_left(tmp_path: Path) -> None:
    (tmp_path / "mp.jwk.json").write_text("{}")
    ran = keygen(tmp_path / "mp")
    assert ran.code == 1
    assert f"{tmp_path / 'mp.jwk.json'} exists; refusing to overwrite a key (nothing was written)" in ran.err
    assert (tmp_path / "mp.jwk.json").read_text() == "{}"
    assert not (tmp_path / "mp.pem").exists()


def test_a_dangling_link_at_the_public_path_is_refused_and_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "planted.json"
    (tmp_path / "mp.jwk.json").symlink_to(target)
    ran = keygen(tmp_path / "mp")
    assert ran.code == 1
    assert "mp.jwk.json is a symbolic link" in ran.err
    assert not target.exists()
    assert not (tmp_path / "mp.pem").exists()


def test_a_file_that_appears_while_the_key_is_made_is_not_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the check and the write (the key takes a moment to generate) another process creates the JWK file."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    real = rsa.generate_private_key

    def generate(*args: Any, **kwargs: Any) -> Any:
        (tmp_path / "mp.jwk.json").write_text("theirs")
        return real(*args, **kwargs)

    monkeypatch.setattr(rsa, "generate_private_key", generate)
    ran = keygen(tmp_path / "mp")
    assert ran.code == 1
    assert "no key was written" in ran.err
    assert (tmp_path / "mp.jwk.json").read_text() == "theirs"
    assert not (tmp_path / "mp.pem").exists()  # the private half was removed again


def test_keygen_makes_the_key_folder_owner_only(tmp_path: Path) -> None:
    made = keygen(tmp_path / ".keys" / "mp")
    assert made.code == 0, made.err
    assert stat.S_IMODE((tmp_path / ".keys").stat().st_mode) & 0o077 == 0
    public = json.loads((tmp_path / ".keys" / "mp.jwk.json").read_text())
    assert (public["kid"], "d" in public) == ("key-2026", False)


def test_the_docs_keep_keys_where_git_ignores_them() -> None:
    """Every keygen command of the docs writes into a git-ignored place, and keygen's help names it."""
    commands = [shlex.split(c) for _, c in docs_support.all_commands() if c.startswith("dpctl auth keygen ")]
    assert commands
    root = docs_support.ROOT
    for command in commands:
        out = command[command.index("--out") + 1]
        for written in (f"{out}.pem", f"{out}.jwk.json"):
            ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", written], cwd=root, check=False)
            assert ignored.returncode == 0, f"{written} (from the docs' `{' '.join(command)}`) is not git-ignored"
    assert "keep keys in .keys/ (git-ignored)" in " ".join(dpctl("auth", "keygen", "--help").out.split())
    for path in ("any.pem", "elsewhere/any.pem", ".keys/any.txt"):
        assert subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=root, check=False).returncode == 0
