import pytest

from sklearn_gatedmem import _cells


@pytest.fixture(params=sorted(_cells.ACTIVATIONS))
def method(request):
    """Run the test with each activation method forced, whatever this
    machine would choose (see ``_cells.activation_method``)."""
    previous = _cells._force_activation(request.param)
    yield request.param
    _cells._force_activation(previous)
