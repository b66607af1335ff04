"""Small data sets shipped with the package, for examples and tests."""

from importlib import resources

import numpy as np
from sklearn.utils import Bunch

__all__ = ["load_airline"]

_AIRLINE_DESCR = """\
Monthly international airline passengers, January 1949 to December 1960
=======================================================================

144 monthly totals of international airline passengers, in thousands, from
Box, G. E. P. and Jenkins, G. M. (1976), *Time Series Analysis, Forecasting
and Control*, Series G (from Brown, 1963). The classic example of a series
with a trend and a multiplicative yearly seasonality, whose amplitude grows
with the level. Public domain.

:Number of observations: 144 (12 years of 12 months)
:Unit: thousands of passengers
:Range: 104 (November 1949) to 622 (July 1960)
"""


def load_airline():
    """Load the monthly international airline passengers, 1949 to 1960.

    The Box & Jenkins "Series G": 144 monthly totals, in thousands of
    passengers, with a trend and a yearly seasonality that grows with the
    level. Read from a CSV file inside the package.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the attributes:

        data : ndarray of shape (144,), float64
            Passengers per month, in thousands, oldest first.
        dates : ndarray of shape (144,), datetime64[M]
            The month of each value, ``1949-01`` to ``1960-12``.
        DESCR : str
            Description and source of the series.

    Examples
    --------
    >>> from sklearn_gatedmem.datasets import load_airline
    >>> airline = load_airline()
    >>> airline.data[:4]
    array([112., 118., 132., 129.])
    >>> str(airline.dates[0]), str(airline.dates[-1])
    ('1949-01', '1960-12')
    """
    path = resources.files(__name__).joinpath("data").joinpath("airline_passengers.csv")
    with path.open("r", encoding="ascii") as f:
        rows = [line.strip().split(",") for line in f.read().splitlines()[1:]]
    dates = np.array([month for month, _ in rows], dtype="datetime64[M]")
    data = np.array([value for _, value in rows], dtype=np.float64)
    return Bunch(data=data, dates=dates, DESCR=_AIRLINE_DESCR)
