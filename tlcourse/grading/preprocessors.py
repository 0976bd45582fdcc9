"""An nbgrader preprocessor that gives the student release our own placeholders.

nbgrader's :class:`~nbgrader.preprocessors.ClearSolutions` replaces everything between
``### BEGIN SOLUTION`` and ``### END SOLUTION`` with one configured stub. Our exercise
cells are not all alike (``n_params = ____``, ``def relu_features(X, W, b): return ____``),
so the course's ``nbgrader_config.py`` puts :class:`RestorePlaceholders` in its place:
a solution cell whose metadata keeps its blank form (``tlcourse.blank``, written by
``tlcourse grade release``) gets exactly that blank back; any other solution region
gets the configured stub (``____``). The student release then looks like the course
notebook.
"""

from __future__ import annotations

from nbgrader.preprocessors import ClearSolutions


class RestorePlaceholders(ClearSolutions):
    """:class:`ClearSolutions`, restoring each exercise cell's own blank form."""

    def preprocess_cell(self, cell, resources, cell_index):
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        meta = cell.get("metadata", {}).get("tlcourse", {})
        if "blank" in meta:
            cell.source = meta.pop("blank")
        return cell, resources
