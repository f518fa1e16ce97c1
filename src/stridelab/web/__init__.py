"""``stridelab explore``: a local web app for stride, padding and receptive fields.

:func:`create_app` builds the ASGI app (Starlette); ``stridelab explore`` serves it with uvicorn.
Every number the pages show comes from :mod:`stridelab.arith` (through
:mod:`stridelab.inspect` for models) via the JSON API; the JavaScript only draws.
"""

from stridelab.web.app import create_app

__all__ = ["create_app"]
