"""The physical-limit reference: how close ddstream's C parse comes to what the hardware and the
best parsers allow, on the same decompressed answer body in the same run.

For one answer of a scenario (its first chunk, as the clients receive it), each timed alone, the
least CPU time of ``repeat`` runs on a warm cache:

* ``inflate``: libdeflate's gzip decoding alone (the ``deflate`` package, the same library
  inflate.c calls);
* ``memchr``: a plain scan of the body for every ``]`` (bench/parse_limit.c): reading every byte;
* ``simdjson``: the ``pysimdjson`` package's parse of the whole document (simdjson's DOM parser:
  validation, every number converted), without building Python objects;
* ``ddstream``: the library's parse of the decompressed body (``dds_parse_query_response_fast``:
  the pointlist scanner, number_parse.c and cJSON on the envelope), compiled from the library's
  sources with its optimization (bench/parse_limit.c); ``scan``: its pointlist scanner alone.

Each as MB/s of decompressed JSON and ns per point; ddstream's parse also as a share of
simdjson's throughput. A package that is not installed leaves its column empty, with the reason.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .harness import REPO, Server

BENCH = Path(__file__).resolve().parent
# The library's sources parse.c needs (as tests/fuzz/meson.build lists them), and its flags:
# meson's debugoptimized build (-O2), C11, the same POSIX level.
_SOURCES = ("parse.c", "pointlist.c", "number_parse.c", "bigalloc.c", "json_check.c", "json_tree.c",
            "error.c", "error_body.c", "error_page.c", "text_sanitize.c",
            "vendor/cjson/cJSON.c")  # fmt: skip
_FLAGS = ("-std=c11", "-O2", "-D_POSIX_C_SOURCE=200809L", "-DCJSON_HIDE_SYMBOLS")


def build_parse_limit(out_dir: Path) -> Path:
    """Compile bench/parse_limit.c with the library's parser sources."""
    from ddstream import _lib

    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise RuntimeError("a C compiler (cc) is needed for the limit measurements")
    lib = REPO / "libddstream"
    header_dir = Path(_lib.HEADER_PATH).resolve().parent  # ddstream.h, ddstream_version.h
    out = out_dir / "parse_limit"
    subprocess.run(
        [cc, *_FLAGS, str(BENCH / "parse_limit.c"), *(str(lib / s) for s in _SOURCES),
         f"-I{header_dir}", f"-I{lib}", f"-I{lib / 'vendor' / 'cjson'}", "-lm", "-o", str(out)],
        check=True,
    )  # fmt: skip
    return out


def _best(fn: Callable[[], object], repeat: int) -> float:
    """The least CPU time of ``repeat`` calls (this thread's: on a shared machine wall time would
    count the other processes too; parse_limit.c times the same way)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.thread_time()
        fn()
        best = min(best, time.thread_time() - start)
    return best


def _simdjson(body: bytes, repeat: int) -> tuple[float | None, str]:
    try:
        import simdjson  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return None, "pysimdjson is not installed (bench/requirements.txt)"
    parser = simdjson.Parser()

    def parse() -> None:
        # parse() runs simdjson's whole-document parse and returns a lazy proxy: no Python
        # objects are built for the points. Dropped at once, so the parser can be reused.
        document = parser.parse(body)
        del document

    return _best(parse, repeat), f"pysimdjson {getattr(simdjson, '__version__', '')}".strip()


def _inflate(gz: bytes, size: int, repeat: int) -> tuple[float | None, str]:
    try:
        import deflate  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return None, "the deflate package (libdeflate) is not installed (bench/requirements.txt)"
    if len(deflate.gzip_decompress(gz)) != size:
        return None, "deflate decoded another length"
    return _best(lambda: deflate.gzip_decompress(gz), repeat), f"deflate {deflate.__version__}"


def measure(
    server: Server, request: list[Any], tool: Path, points: int, repeat: int = 7
) -> dict[str, Any]:
    """Every limit figure for the answer to ``request`` ([query, from, to])."""
    with tempfile.TemporaryDirectory(prefix="ddstream-limits-") as tmp:
        gz_path, body_path = Path(tmp) / "body.json.gz", Path(tmp) / "body.json"
        server.command("body", request=request, path=str(gz_path))
        gz = gz_path.read_bytes()
        body = gzip.decompress(gz)
        body_path.write_bytes(body)
        c = subprocess.run(
            [str(tool), str(body_path), str(repeat)], capture_output=True, text=True, check=True
        )
        figures: dict[str, Any] = json.loads(c.stdout)
    simd_s, simd_note = _simdjson(body, repeat)
    inflate_s, inflate_note = _inflate(gz, len(body), repeat)
    seconds = {
        "inflate": inflate_s,
        "memchr": figures["memchr_s"],
        "simdjson": simd_s,
        "ddstream": figures["ddstream_parse_s"],
        "scan": figures["pointlist_scan_s"],
    }
    mb = len(body) / 1e6
    n = figures["points"]
    rates = {
        name: None if s is None else {"s": s, "mb_per_s": mb / s, "ns_per_point": 1e9 * s / n}
        for name, s in seconds.items()
    }
    share = None if simd_s is None else simd_s / figures["ddstream_parse_s"]
    return {
        "body_bytes": len(body),
        "gzip_bytes": len(gz),
        "points": n,
        "answer_points": points,
        "repeat": repeat,
        "rates": rates,
        "ddstream_share_of_simdjson": share,
        "notes": [simd_note, inflate_note],
    }
