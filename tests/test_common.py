"""scikit-learn's own API contract, run on each estimator with its defaults.

The checks feed real-valued data, often negative: ``likelihood="auto"``
models it with a Gaussian on normal scores, while data in [0, 1] keep the
classic Bernoulli model (the Pipeline, GridSearchCV, clone and pickle tests of
``test_estimator.py`` cover that case).
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skvae import VAEImputer, VAEOutlierDetector, VAETransformer


def _expected_failed_checks(estimator):
    return {}


@parametrize_with_checks(
    [
        VAETransformer(random_state=0),
        VAEOutlierDetector(random_state=0),
        VAEImputer(random_state=0),
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
