"""The result of a unit-importance run: unit PPMs, final weights, importance distributions, report section."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from interpkit.results import Result

__all__ = ["UnitImportanceResult"]


@dataclass(frozen=True)
class UnitImportanceResult(Result):
    """What :func:`interpkit_unit_importance.unit_importance.unit_importance` returns (arrays documented there).

    Attributes
    ----------
    activation_layer, unit_layer : str
        The layers read: unit activation maps and unit outputs.
    output_names : tuple of str
        The T outputs, in the order of the last axis of ``final_weights``' first axis and of every
        importance array.
    receptive_field : int
        F, the width of the unit PPMs in bp.
    """

    activation_layer: str = ""
    unit_layer: str = ""
    output_names: tuple[str, ...] = ()
    receptive_field: int = 0

    def unit_distribution(self, unit: int, output: int) -> np.ndarray:
        """The importance of ``unit`` for output number ``output`` on each row of its sequence set S_u.

        Returns
        -------
        ndarray of shape (|S_u|,), float64
            Unit output x final weight, in the model's output units; empty for a unit without sequences.
        """
        a = self.arrays
        return a["importance"][a["importance_unit"] == unit, output]

    def top_units(self, output: int, k: int) -> list[int]:
        """The ``k`` units with the largest median importance for output number ``output`` (NaN excluded)."""
        med = self.arrays["median_importance"][:, output]
        order = [int(u) for u in np.argsort(-np.nan_to_num(med, nan=-np.inf), kind="stable") if not np.isnan(med[u])]
        return order[:k]

    def report_section(self, *, max_rows: int = 50) -> str:
        """HTML: the final weights heatmap, per output the importance box plots of its top units, the units
        and median-importance tables, and logos of the top units with their Tomtom annotation."""
        from interpkit_unit_importance.report import render

        return render(self, max_rows=max_rows)
