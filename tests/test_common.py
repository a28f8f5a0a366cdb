"""scikit-learn's own API contract, run on the estimator.

The checks feed real-valued data, often negative, so they run with the
Gaussian likelihood: the default Bernoulli likelihood rejects data outside
[0, 1] by design, a restriction scikit-learn's tags cannot express. Everything
else about the estimator is the same for both likelihoods, and the default is
covered by the Pipeline, GridSearchCV, clone and pickle tests in
``test_estimator.py``.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skvae import VAETransformer


def _expected_failed_checks(estimator):
    return {
        "check_methods_subset_invariance": (
            "May fail: PyTorch computes in float32 and its matrix products "
            "round differently for different batch sizes (about 1e-7 "
            "relative), at the edge of this check's rtol=1e-7; "
            "test_estimator.py checks subset invariance at float32 precision "
            "(issue #3)."
        ),
    }


@parametrize_with_checks(
    [
        VAETransformer(
            likelihood="gaussian", max_epochs=2, n_components=2, random_state=0
        )
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
