"""Operators of the Meta bulk-engine provider (deferrable by default).

``MetaBulkOperator`` sends a list of operations; ``MetaJobOperator`` runs a job file through the operations
layer, and the per-verb operators run one task of it built from their arguments.
"""

from .bulk import MetaBulkOperator
from .copy import MetaCopyOperator
from .create import MetaBulkCreateOperator
from .export import MetaExportOperator
from .job import MetaJobOperator
from .messages import MetaMarketingMessagesOperator
from .migrate import MetaAdvantagePlusMigrationOperator
from .status import MetaStatusOperator
from .update import MetaUpdateOperator

__all__ = [
    "MetaAdvantagePlusMigrationOperator",
    "MetaBulkCreateOperator",
    "MetaBulkOperator",
    "MetaCopyOperator",
    "MetaExportOperator",
    "MetaJobOperator",
    "MetaMarketingMessagesOperator",
    "MetaStatusOperator",
    "MetaUpdateOperator",
]
