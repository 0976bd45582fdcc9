"""Recording a notebook's key figures so that tests and the course site can read them back.

A notebook creates one :class:`Recorder`, stores scalars (accuracies, times) and tables
(one row per run), and saves. The file is JSON, one per notebook, in
:func:`tlcourse.paths.results_dir`::

    {"notebook": "04_feature_extraction_torch",
     "values": {"acc@5/finetune": 0.81, ...},
     "tables": {"runs": [{"method": "scratch", "labels_per_class": 5, "seed": 0, "acc": 0.6}, ...]}}

>>> rec = Recorder("demo")
>>> rec.add("accuracy", 0.9)
>>> rec["accuracy"]
0.9
"""

from __future__ import annotations

import json
import math
import numbers
import re
from pathlib import Path
from typing import Any

from tlcourse.paths import results_dir

_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


def _plain(value: Any) -> Any:
    """Turn NumPy scalars/arrays into JSON-ready Python values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, bool):  # a claim stays true/false (bool is an Integral too)
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


class Recorder:
    """Collects a notebook's figures and writes them to ``<results_dir>/<name>.json``."""

    def __init__(self, name: str):
        if not _NAME.match(name):
            raise ValueError(f"a results name may hold letters, digits, '_', '.', '-': {name!r}")
        self.name = name
        self.values: dict[str, Any] = {}
        self.tables: dict[str, list[dict[str, Any]]] = {}

    def add(self, key: str, value: Any) -> None:
        """Record one figure (a number, string or list)."""
        value = _plain(value)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{key}: refusing to record a non-finite number ({value})")
        self.values[key] = value

    def add_table(self, key: str, rows) -> None:
        """Record a table: a pandas DataFrame or a list of dicts (one per row)."""
        if hasattr(rows, "to_dict"):
            rows = rows.to_dict(orient="records")
        self.tables[key] = [{k: _plain(v) for k, v in row.items()} for row in rows]

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    @property
    def path(self) -> Path:
        return results_dir() / f"{self.name}.json"

    def save(self) -> Path:
        """Write the JSON file and return its path."""
        payload = {"notebook": self.name, "values": self.values, "tables": self.tables}
        path = self.path
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(payload, indent=1, sort_keys=True))
        tmp.replace(path)
        return path


def load(name: str, directory: Path | None = None) -> dict[str, Any]:
    """Read back what :meth:`Recorder.save` wrote for ``name``."""
    directory = Path(directory) if directory is not None else results_dir()
    path = directory / f"{name}.json"
    if not path.exists():
        known = sorted(p.stem for p in directory.glob("*.json"))
        raise FileNotFoundError(f"no results recorded for {name!r} in {directory}; found {known}")
    return json.loads(path.read_text())
