# Copyright 2026 The bevformer_ros Authors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""
Minimum-cost one-to-one assignment (scipy's ``linear_sum_assignment``) in numpy.

Kuhn-Munkres with row/column potentials and Dijkstra-like shortest augmenting paths (the
Jonker-Volgenant formulation): O(n^2 m) for n <= m, each inner step vectorised over the m columns.
scipy is not a dependency of this package, and the matrices here are small (ground-truth boxes x
object queries, tens x hundreds).
"""

from __future__ import annotations

import numpy as np


def linear_sum_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """
    Match rows to columns one-to-one with the least total cost.

    Parameters
    ----------
    cost
        [n, m] finite costs; min(n, m) pairs are matched.

    Returns
    -------
    tuple[np.ndarray, np.ndarray]
        (row_ind, col_ind), int64 [min(n, m)] each, sorted by row (as scipy's
        linear_sum_assignment).

    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2:
        raise ValueError(f'cost must be a 2-D matrix [rows, cols], got shape {cost.shape}')
    if not np.all(np.isfinite(cost)):
        raise ValueError('cost contains NaN or inf; replace them first (e.g. torch.nan_to_num)')
    if cost.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    if cost.shape[0] > cost.shape[1]:
        cols, rows = _assign_rows(cost.T)
    else:
        rows, cols = _assign_rows(cost)
    order = np.argsort(rows)
    return rows[order], cols[order]


def _assign_rows(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Assign every row of cost [n, m] (n <= m) to a distinct column; returns (rows, cols)."""
    n, m = cost.shape
    # 1-based rows and columns; column 0 is the virtual start of each augmenting path.
    u = np.zeros(n + 1)  # row potentials
    v = np.zeros(m + 1)  # column potentials
    owner = np.zeros(m + 1, dtype=np.int64)  # owner[j]: row matched to column j (0 = free)
    way = np.zeros(m + 1, dtype=np.int64)  # previous column on the shortest path
    for i in range(1, n + 1):
        owner[0] = i
        j0 = 0
        min_slack = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = owner[j0]
            free = ~used[1:]
            slack = cost[i0 - 1] - u[i0] - v[1:]  # [m] reduced costs from row i0
            better = free & (slack < min_slack[1:])
            min_slack[1:][better] = slack[better]
            way[1:][better] = j0
            candidates = np.where(free, min_slack[1:], np.inf)
            j1 = int(np.argmin(candidates)) + 1
            delta = candidates[j1 - 1]
            tree = np.flatnonzero(used)  # columns (with their rows) already on the path tree
            u[owner[tree]] += delta
            v[tree] -= delta
            min_slack[1:][free] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:  # flip the matching along the augmenting path
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    cols = np.flatnonzero(owner[1:]) + 1
    return owner[cols] - 1, cols - 1
