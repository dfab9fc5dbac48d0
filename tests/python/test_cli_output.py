"""``ddstream query -o PATH`` with whatever is, or is not, at PATH: the real CLI in a subprocess,
real files, a real FIFO with a reader thread, the null and full character devices (as root, nodes
made in a temporary directory, never the machine's own), symlinks, and (as root) a read-only bind
mount and a full tmpfs.

Regular files and new names are written as PATH.partial and renamed; FIFOs and devices are
written in place and stay what they are; symlinks are followed and stay links. Every path
mistake is one line on stderr naming the path and the reason, exit code 2, nothing fetched when
it can be seen up front, and no ``.partial`` left anywhere.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import ddstream as dd

# Private on purpose: the output rules are tested where they live, with errors raised at the
# exact point a failing stream would raise them.
from ddstream._output import OutputError, check_output, open_output
from ddstream.testing import FakeDatadog

START_ISO = "2023-11-12T03:00:00Z"
END_ISO = "2023-11-12T05:00:00Z"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeDatadog]:
    with FakeDatadog(api_keys={"cli-api"}, app_keys={"cli-app"}) as fake:
        yield fake


def cli(fake: FakeDatadog, output: str | Path, *extra: str,
        query: str = "avg:system.cpu.user{*}", end: str = END_ISO
        ) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, DDSTREAM_BASE_URL=fake.url, DD_API_KEY="cli-api", DD_APP_KEY="cli-app")
    args = ["query", query, "--from", START_ISO, "--to", end, "--chunk-seconds", "3600", "-q",
            "-o", str(output), *extra]
    return subprocess.run([sys.executable, "-m", "ddstream", *args], env=env,
                          capture_output=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def expected(server: FakeDatadog) -> bytes:
    """The export as the CLI writes it to stdout."""
    result = cli(server, "-")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(b"\n") == 121  # header and 120 minutes
    return result.stdout


def partials(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob("*.partial")]


def assert_path_error(result: subprocess.CompletedProcess[bytes], path: str | Path,
                      reason: str) -> None:
    err = result.stderr.decode()
    assert result.returncode == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert err.startswith("ddstream: cannot write ") and str(path) in err and reason in err, err


# -- what gets written, and how -----------------------------------------------------------------

def test_new_file_via_partial_and_rename(server: FakeDatadog, expected: bytes,
                                         tmp_path: Path) -> None:
    out = tmp_path / "cpu.csv"
    result = cli(server, out)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == expected and not partials(tmp_path)


def test_existing_file_is_replaced_whole_and_keeps_its_mode(server: FakeDatadog, expected: bytes,
                                                             tmp_path: Path) -> None:
    out = tmp_path / "cpu.csv"
    out.write_text("old\n")
    out.chmod(0o640)
    before = out.stat().st_ino
    (tmp_path / "cpu.csv.partial").write_text("left over by a crash\n")  # ours to overwrite
    result = cli(server, out)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == expected
    assert out.stat().st_ino != before  # renamed into place, not rewritten in place
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert not partials(tmp_path)


def test_fifo_is_written_in_place(server: FakeDatadog, expected: bytes, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []

    def read() -> None:
        with open(fifo, "rb") as f:  # blocks until the CLI opens the other end
            received.append(f.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        result = cli(server, fifo)
    finally:
        reader.join(timeout=30)
        if reader.is_alive():  # the CLI never opened it: let the reader go
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            reader.join(timeout=5)
    assert result.returncode == 0, result.stderr
    assert received == [expected]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # still a FIFO, not a regular file
    assert not partials(tmp_path)


DEVICES = {"null": (os.devnull, (1, 3)), "full": ("/dev/full", (1, 7))}


def device(name: str, tmp_path: Path) -> Path:
    """A character device to export to. As root, a node of it made in tmp_path: a regression
    that replaces the output with a regular file (as the old -o did) must not replace the
    machine's own /dev/null. Without root the real one, which such a bug cannot replace."""
    system, (major, minor) = DEVICES[name]
    if os.geteuid() != 0:
        if not os.path.exists(system):
            pytest.skip(f"no {system} on this system")
        return Path(system)
    node = tmp_path / f"{name}-device"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(major, minor))
        os.close(os.open(node, os.O_WRONLY))
    except OSError as exc:  # no CAP_MKNOD, or tmp mounted nodev
        pytest.skip(f"cannot make a usable device node here ({exc}); not touching {system}")
    return node


@pytest.mark.parametrize("fmt", ["csv", "arrow"])
def test_null_device_stays_a_device(server: FakeDatadog, tmp_path: Path, fmt: str) -> None:
    out = device("null", tmp_path)
    result = cli(server, out, "--format", fmt)
    assert result.returncode == 0, result.stderr
    info = os.lstat(out)
    assert stat.S_ISCHR(info.st_mode) and info.st_rdev == os.makedev(1, 3)
    assert not os.path.lexists(f"{out}.partial") and not partials(tmp_path)


def test_symlink_to_a_file_is_followed_and_kept(server: FakeDatadog, expected: bytes,
                                                tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    target = data / "cpu.csv"
    target.write_text("old\n")
    link = tmp_path / "latest.csv"
    link.symlink_to(target)
    result = cli(server, link)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes() == expected
    assert not partials(tmp_path)


def test_dangling_symlink_creates_its_target(server: FakeDatadog, expected: bytes,
                                             tmp_path: Path) -> None:
    target = tmp_path / "made.csv"
    link = tmp_path / "chain1"
    (tmp_path / "chain2").symlink_to(target)
    link.symlink_to(tmp_path / "chain2")
    result = cli(server, link)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and (tmp_path / "chain2").is_symlink()
    assert target.read_bytes() == expected and not partials(tmp_path)


def test_symlink_to_a_fifo_writes_the_fifo(server: FakeDatadog, expected: bytes,
                                           tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "link"
    link.symlink_to(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = cli(server, link)
    reader.join(timeout=30)
    assert result.returncode == 0, result.stderr
    assert received == [expected] and stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_socket_is_not_replaced(server: FakeDatadog, tmp_path: Path) -> None:
    """A Unix socket cannot be opened as a file (ENXIO): one line, exit 2, still a socket."""
    path = tmp_path / "sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        assert_path_error(cli(server, path), path, "No such device or address")
        assert stat.S_ISSOCK(os.lstat(path).st_mode) and not partials(tmp_path)


# -- path mistakes: one line, exit 2, nothing fetched, nothing left ------------------------------

def test_missing_directory(server: FakeDatadog, tmp_path: Path) -> None:
    server.clear_log()
    out = tmp_path / "no" / "such" / "cpu.csv"
    assert_path_error(cli(server, out), out, f"directory {tmp_path / 'no' / 'such'} does not exist")
    assert not partials(tmp_path) and server.query_requests == []


@pytest.mark.parametrize("name", ["adir", "adir/", "adir/.", "newdir/", "."])
def test_a_directory(server: FakeDatadog, tmp_path: Path, name: str) -> None:
    server.clear_log()
    (tmp_path / "adir").mkdir()
    out = f"{tmp_path}/{name}"
    result = cli(server, out)
    reason = "it names a directory, not a file" if name == "newdir/" else "it is a directory"
    assert_path_error(result, out, reason)
    assert not partials(tmp_path.parent) and server.query_requests == []
    assert not (tmp_path / "newdir").exists()


def test_parent_is_a_regular_file(server: FakeDatadog, tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("x")
    out = tmp_path / "file.txt" / "cpu.csv"
    assert_path_error(cli(server, out), out, "Not a directory")
    assert (tmp_path / "file.txt").read_text() == "x" and not partials(tmp_path)


def test_symlink_loop(server: FakeDatadog, tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    assert_path_error(cli(server, tmp_path / "a"), tmp_path / "a",
                      "Too many levels of symbolic links")


def test_planted_partial_symlink_is_not_followed(server: FakeDatadog, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / "cpu.csv.partial").symlink_to(victim)
    out = tmp_path / "cpu.csv"
    assert_path_error(cli(server, out), out, "cpu.csv.partial exists and is not a regular file")
    assert victim.read_text() == "precious\n" and (tmp_path / "cpu.csv.partial").is_symlink()
    assert not out.exists()


def test_empty_path(server: FakeDatadog) -> None:
    result = cli(server, "")
    assert result.returncode == 2 and b"empty path" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def _mount(*args: str | Path) -> bool:
    if shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", *map(str, args)], capture_output=True,
                          check=False).returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", str(path)], capture_output=True, check=False)


@pytest.fixture
def unwritable_dir(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory no file can be created in, and the reason the CLI must give: a read-only
    bind mount as root (who bypasses permission bits), mode 0500 otherwise."""
    directory = tmp_path / "locked"
    directory.mkdir()
    (directory / "cpu.csv").write_text("old\n")
    if os.geteuid() != 0:
        directory.chmod(0o500)
        yield directory, "permission denied"
        directory.chmod(0o700)
        return
    if not _mount("--bind", directory, directory):
        pytest.skip("as root without mount(8) permission no directory is unwritable to us")
    try:
        if not _mount("-o", "remount,ro,bind", directory):
            pytest.skip("cannot remount read-only here")
        yield directory, "read-only file system"
    finally:
        _umount(directory)


@pytest.mark.parametrize("name", ["new.csv", "cpu.csv"])
def test_unwritable_directory(server: FakeDatadog, unwritable_dir: tuple[Path, str],
                              name: str) -> None:
    directory, reason = unwritable_dir
    server.clear_log()
    out = directory / name
    assert_path_error(cli(server, out), out, f"cannot create files in {directory}: {reason}")
    assert (directory / "cpu.csv").read_text() == "old\n" and not partials(directory)
    assert server.query_requests == []


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "arrow"])
def test_device_full_while_writing(server: FakeDatadog, tmp_path: Path, fmt: str) -> None:
    """ENOSPC during the write, in place on a device: the full device (1, 7)."""
    out = device("full", tmp_path)
    result = cli(server, out, "--format", fmt)
    assert_path_error(result, out, "No space left on device")
    info = os.lstat(out)
    assert stat.S_ISCHR(info.st_mode) and info.st_rdev == os.makedev(1, 7)
    assert not os.path.lexists(f"{out}.partial") and not partials(tmp_path)


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (root only): a regular file that cannot grow past it."""
    mountpoint = tmp_path / "small"
    mountpoint.mkdir()
    if os.geteuid() != 0 or not _mount("-t", "tmpfs", "-o", "size=64k", "tmpfs", mountpoint):
        pytest.skip("mounting a small tmpfs needs root; /dev/full covers ENOSPC without it")
    try:
        yield mountpoint
    finally:
        _umount(mountpoint)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_disk_full_while_writing_a_file(server: FakeDatadog, full_disk: Path, fmt: str) -> None:
    """ENOSPC partway through a regular file: exit 2, the old file untouched, no .partial."""
    out = full_disk / "cpu.out"
    out.write_text("old\n")
    # A day of a grouped query: several hundred KB, far more than the 64 KiB disk holds.
    result = cli(server, out, "--format", fmt, query="avg:system.cpu.user{*} by {host}",
                 end="2023-11-13T03:00:00Z")
    assert_path_error(result, out, "No space left on device")
    assert out.read_text() == "old\n"
    assert not partials(full_disk)


# -- a stream that fails while its output is open ----------------------------------------------

@pytest.mark.parametrize("error", [
    dd.NetworkError("connection refused", status=24),
    dd.RequestTimeoutError("timed out", status=25),
    dd.AuthError("forbidden", status=20),
])
def test_a_stream_error_inside_open_output_is_not_an_output_error(tmp_path: Path,
                                                                  error: Exception) -> None:
    """NetworkError and RequestTimeoutError are OSErrors too: the output's own OSError handling
    (which turns write failures into "cannot write PATH") must let them through unchanged."""
    out = tmp_path / "cpu.csv"
    target = check_output(str(out))

    def fail_while_writing() -> None:
        with open_output(target, binary=False) as handle:
            handle.write("timestamp\n")
            raise error

    with pytest.raises(type(error)) as info:
        fail_while_writing()
    assert info.value is error
    assert not out.exists() and not partials(tmp_path)


def test_a_write_failure_inside_open_output_is_still_an_output_error(tmp_path: Path) -> None:
    target = check_output(str(tmp_path / "cpu.csv"))

    def fail_while_writing() -> None:
        with open_output(target, binary=False):
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OutputError, match=r"cannot write .*cpu\.csv: No space left on device"):
        fail_while_writing()
    assert not partials(tmp_path)


def test_network_failure_during_export_to_a_file_is_a_network_error(tmp_path: Path) -> None:
    """End to end: nothing listens at the base URL, so the export fails with the network exit
    code and ddstream's message, not as a mistake about the output path."""
    out = tmp_path / "cpu.csv"
    env = dict(os.environ, DDSTREAM_BASE_URL="http://127.0.0.1:9", DD_API_KEY="cli-api",
               DD_APP_KEY="cli-app")
    result = subprocess.run(
        [sys.executable, "-m", "ddstream", "query", "avg:system.cpu.user{*}", "--from", START_ISO,
         "--to", END_ISO, "--chunk-seconds", "3600", "-q", "-o", str(out)],
        env=env, capture_output=True, timeout=120, check=False)
    err = result.stderr.decode()
    assert result.returncode == 5, err  # EXIT_NETWORK
    assert "cannot write" not in err and "Couldn't connect" in err, err
    assert not out.exists() and not partials(tmp_path)
