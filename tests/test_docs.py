"""The user guide's examples and lists stay true to the code."""

import doctest
from pathlib import Path

import pytest

from skvae import VAETransformer
from skvae._likelihoods import LIKELIHOODS

GUIDE = Path(__file__).parents[1] / "docs" / "user_guide"


@pytest.mark.parametrize(
    "page", sorted(p.name for p in GUIDE.glob("*.rst") if ">>>" in p.read_text())
)
def test_the_pycon_examples_of_the_user_guide_give_what_they_show(page):
    result = doctest.testfile(
        str(GUIDE / page),
        module_relative=False,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        verbose=False,
        report=True,
    )
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("name", sorted(LIKELIHOODS))
def test_every_likelihood_name_is_documented(name):
    # The names that likelihood=, and so skvae embed --likelihood, accept.
    assert f'* - ``"{name}"``' in (GUIDE / "likelihoods.rst").read_text()
    assert f'- ``"{name}"``: ' in VAETransformer.__doc__
