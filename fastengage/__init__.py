"""fastengage: customer-engagement analytics over Apache Arrow with native kernels."""
from .errors import ColumnNotFoundError, ConvergenceError, FastEngageError, InputError, ModelFormatError

__version__ = "0.1.0"
from .features import RFMState, rfm
from .segments import DEFAULT_SEGMENTS
from . import recommend
from . import clv
from . import scoring
from .scoring.churn import churn_dataset
