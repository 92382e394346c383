"""The edit corpus (see ``edit_corpus_cases.py``): each edit, in a real throwaway project, either
keeps the recording (cosmetic) or makes strict replay miss with an explanation naming what
changed. Every step runs in a fresh interpreter.

Cases that fail today while their fix is in progress (issue 12) are ``xfail(strict=True)``: they
turn into failures as soon as they pass, so that the marker is removed. Known blind spots
(environment variables, files outside the project root) pin today's stale answer.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from edit_corpus_cases import CASES, KEEP, Case, handled, run_case


def _param(case: Case) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=case.needs)] if case.failing else []
    return pytest.param(case, id=f"{case.category}/{case.name}".replace(" ", "-"), marks=marks)


@pytest.mark.parametrize("case", [_param(case) for case in CASES])
def test_edit(case: Case, tmp_path: Path) -> None:
    outcome = run_case(case, tmp_path / "proj")
    if case.blind_spot:
        stale = KEEP if case.expected != KEEP else "invalidate"
        assert outcome.result == stale, (
            f"a documented blind spot ({case.blind_spot}) now gives {outcome.result}: "
            f"update the case and the docs\n{outcome.text}")
        return
    assert outcome.result == case.expected, outcome.text
    assert handled(case, outcome), (
        f"the miss does not name the changed component (one of {case.names}):\n{outcome.text}")


def test_corpus_size_and_shape() -> None:
    assert len(CASES) >= 80
    assert len({(case.category, case.name) for case in CASES}) == len(CASES)
    keeps = sum(case.expected == KEEP for case in CASES)
    assert 15 <= keeps <= len(CASES) - 40  # both kinds of mistake are measured
    for case in CASES:
        assert case.expected == KEEP or case.names or case.blind_spot, case.name
        assert not case.failing or case.needs, case.name
