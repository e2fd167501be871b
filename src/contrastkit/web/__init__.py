"""The interactive demo (``contrastkit demo``): a FastAPI app and a static page, no build step.

Needs the ``web`` extra (``pip install 'contrastkit[web]'``). ``contrastkit.web.app.create_app``
builds the app; the page in ``static/`` only draws, while every number on it is computed by
contrastkit. Nothing here is imported by the library.
"""
