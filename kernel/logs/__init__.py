"""Structured logs: every line says which request, actor, session, run, batch and task it
belongs to (docs/operations.md, "Logs").

The code logs through the standard library (``logging.getLogger(__name__)``), and so do
Django, Celery and gunicorn. What a line is about is kept in a context variable
(``context``): the request middleware, the API's authentication, the Celery task signals
and a few services bind ids to it, and a filter on the one handler copies them onto every
record. ``LOG_FORMAT=json`` (production) writes each record as one JSON object with
python-json-logger; ``text`` (development) keeps readable lines with the ids at the end.
"""
