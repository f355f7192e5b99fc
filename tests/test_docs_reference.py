"""The generated reference pages must match the code and schemas they are generated from."""

from __future__ import annotations

import pytest

from dataprep import docs_gen


@pytest.mark.parametrize("name", sorted(docs_gen.pages()))
def test_reference_page_is_current(name):
    path = docs_gen.DOCS / name
    assert path.exists(), f"{path} missing: run `python3 -m dataprep.docs_gen`"
    assert path.read_text(encoding="utf-8") == docs_gen.pages()[name], (
        f"{path} is stale: run `python3 -m dataprep.docs_gen` and commit the result"
    )
