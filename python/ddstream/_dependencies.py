"""ddstream's optional dependencies: imported on first use, typed for checkers, and a missing one
named together with the extra that installs it.

``import ddstream`` and the numpy path need none of pyarrow, pandas, polars, DuckDB, dask or
distributed. Every module that needs one takes it from here (the pattern of polars'
``dependencies.py``): at run time each name below is a :class:`LazyModule` that imports the real
module when an attribute is first read; for type checkers it *is* the real module, so code using
it is checked against the package's own types (or stubs). A missing package raises
:class:`ImportError` saying what needed it and what to install, e.g.
``ddstream's Arrow output needs pyarrow: pip install 'ddstream[arrow]'``.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

__all__ = [
    "EXTRAS",
    "LazyModule",
    "dask",
    "dask_dataframe",
    "distributed",
    "distributed_plugin",
    "duckdb",
    "import_optional",
    "pandas",
    "polars",
    "pyarrow",
    "pyarrow_parquet",
]

#: The extra of pyproject.toml that installs each optional top-level package.
EXTRAS = {
    "pyarrow": "arrow",
    "pandas": "pandas",
    "polars": "polars",
    "duckdb": "duckdb",
    "dask": "dask",
    "distributed": "dask",
}


def import_optional(name: str, *, purpose: str = "ddstream", needs: str | None = None
                    ) -> ModuleType:
    """Import ``name`` (dotted names too), or raise ImportError naming the extra to install:
    ``"<purpose> needs <needs>: pip install 'ddstream[<extra>]'"`` (``needs``: default the
    top-level package)."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        top = name.partition(".")[0]
        raise ImportError(
            f"{purpose} needs {needs or top}: pip install 'ddstream[{EXTRAS[top]}]'"
        ) from exc


class LazyModule(ModuleType):
    """A module imported when one of its attributes is first read (``import_optional``)."""

    def __init__(self, name: str, purpose: str) -> None:
        super().__init__(name)
        self._ddstream_purpose = purpose
        self._ddstream_module: ModuleType | None = None

    def _load(self) -> ModuleType:
        module = self._ddstream_module
        if module is None:
            module = import_optional(self.__name__, purpose=self._ddstream_purpose)
            self._ddstream_module = module
        return module

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_ddstream_"):
            raise AttributeError(attr)
        return getattr(self._load(), attr)

    def __repr__(self) -> str:
        state = "loaded" if self._ddstream_module is not None else "not yet imported"
        return f"<lazy module {self.__name__!r} ({state})>"


if TYPE_CHECKING:
    import dask
    import dask.dataframe as dask_dataframe
    import distributed
    import distributed.diagnostics.plugin as distributed_plugin
    import duckdb
    import pandas
    import polars
    import pyarrow
    import pyarrow.parquet as pyarrow_parquet
else:
    pyarrow = LazyModule("pyarrow", "ddstream's Arrow output")
    pyarrow_parquet = LazyModule("pyarrow.parquet", "Parquet output")
    pandas = LazyModule("pandas", "ddstream's pandas output")
    polars = LazyModule("polars", "ddstream's polars output")
    duckdb = LazyModule("duckdb", "ddstream's DuckDB output")
    dask = LazyModule("dask", "ddstream.dask")
    dask_dataframe = LazyModule("dask.dataframe", "ddstream.dask")
    distributed = LazyModule("distributed", "a Dask cluster")
    distributed_plugin = LazyModule("distributed.diagnostics.plugin", "a Dask cluster")
