"""quilt-credproc: an AWS credential_process helper for Quilt catalogs.

Kept free of imports: it is loaded on every call of the hot path.
"""

__version__ = "0.1.0"
