"""Where users already are: thin layers over reloadscope's public API.

``ipython``: the ``%load_ext reloadscope`` extension; ``pytest_plugin``: ``pytest --reloadscope``.
Nothing here is imported by ``import reloadscope``.
"""
