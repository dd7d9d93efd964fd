"""What the package ships beside its code, found where it is installed: the certification scenarios and the
fixtures they are built from (request bodies, the reference BPPs' catalogs, the guide's transaction).

In the project they stay at its top level (`scenarios/`, `fixtures/`), where a reader expects them; the package
reaches them through `conformance/data/`, whose entries link there, and a wheel holds copies at the same place.
So the code asks one place, whether it runs from a checkout, an editable install or a wheel in site-packages.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

DATA = Path(str(resources.files("conformance"))) / "data"
SCENARIOS = DATA / "scenarios"
"""The shipped scenarios: what `deg-conformance run` plays when given none."""
FIXTURES = DATA / "fixtures"
"""Where step bodies and catalogs are found: fixtures/<use case>/..."""
